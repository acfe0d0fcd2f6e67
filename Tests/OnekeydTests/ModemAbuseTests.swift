import Foundation
import OnekeyCore
import Testing

/// Hostile bytes from the modem (CONTRACT §11): noise, endless lines, URC storms, prompts. The
/// real daemon against a misbehaving simulated modem is `ModemTests.floodOfIncomingMessagesAndNoiseStaysBounded`;
/// the AT parser's own garbage tests are `ModemParserTests`; the `modem-at` fuzz target runs both.
@Suite(.serialized) struct ModemAbuseTests {
    static func residentKiB() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// 8 MiB of hostile bytes (noise, endless lines, URC storms, prompts) through one session:
    /// what it keeps must not grow with what it was fed.
    @Test func sessionMemoryStaysFlatUnderAbuse() {
        var session = ModemSession(path: "/dev/abuse")
        _ = session.portOpened(at: 0)
        session.sendSMS(OutgoingSMS(id: "x", number: "+8613800138000", parts: ["测试"]))
        var chunk = [UInt8]()
        var seed: UInt32 = 7
        let pieces = ["\r\n+CMTI: \"SM\",", "\r\n> ", "\r\nOK\r\n", String(repeating: "Z", count: 3000), "\r\n+CMGR: \"REC UNREAD\",\"", "\r\nRING\r\n"]
        while chunk.count < 1 << 20 {
            seed = seed &* 1_103_515_245 &+ 12345
            if seed >> 29 == 0 { chunk.append(UInt8(truncatingIfNeeded: seed >> 8)) }
            else { chunk += Array(pieces[Int(seed >> 16) % pieces.count].utf8) + Array(String(seed % 1000).utf8) }
        }
        let before = Self.residentKiB()
        var now: Int64 = 0
        var held: [Int] = []
        for _ in 0..<8 {
            _ = session.received(chunk, at: now)
            now += 1000
            _ = session.tick(at: now)
            held.append(session.heldItems)
        }
        let grown = Self.residentKiB() - before
        // What the session holds is bounded and does not grow pass after pass. (Process RSS is
        // printed only: the other suites run in this process at the same time.)
        print("modem session: 8 MiB of abuse, held items per MiB \(held), RSS grew \(grown) KiB, skipped \(session.parserSkippedBytes) bytes")
        #expect(held.allSatisfy { $0 <= ATLineParser.maxLineBytes + 64 }, "\(held)")
        #expect(held.last! <= held.first! + 8, "\(held)")
        #expect(session.waitingSMS == ["x"])
    }
}
