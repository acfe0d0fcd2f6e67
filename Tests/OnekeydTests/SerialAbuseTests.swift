import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import Testing

/// Hostile bytes on the receiver's serial port (a pty), the real daemon and a real broker.
/// Whatever arrives, an enrolled press is paged exactly once, the counters say what happened,
/// and the log stays small (line noise is counted and rate limited, never logged per byte).
@Suite(.serialized) struct SerialAbuseTests {
    static let enrolled = "A1B2C"

    func status(_ rig: Rig) throws -> JSON { try rig.daemon.control(["cmd": "status"]) }
    func counter(_ s: JSON, _ name: String) -> Int64 { s["counters"]?[name]?.intValue ?? -1 }

    /// Presses the enrolled button after `abuse` and expects exactly one alert paged to the primaries.
    /// Returns the seconds from the press to its page.
    @discardableResult
    func expectOnePress(_ rig: Rig, after abuse: () throws -> Void) throws -> Double {
        try abuse()
        let t0 = Date()
        try rig.press(Self.enrolled, repeats: 3)
        // Generous: sanitizer builds run 5-10x slower on a loaded 2-core machine.
        let got = rig.sub.wait(timeout: 30) { m in m.contains { $0.topic.hasSuffix("/pages") } }
        #expect(got.contains { $0.topic.hasSuffix("/pages") }, "the press after the abuse was not paged")
        let latency = Date().timeIntervalSince(t0)
        print("press after abuse paged in \(String(format: "%.2f", latency)) s")
        usleep(500_000)
        let alerts = Set(rig.pages.compactMap { $0.json?["alert"]?.stringValue })
        #expect(alerts.count == 1, "alerts paged: \(alerts)")
        return latency
    }

    @Test func garbageTruncatedAndSplitFramesThenAPress() throws {
        let rig = try Rig()
        let frame = Rig.frame(Self.enrolled)
        try expectOnePress(rig) {
            try rig.pty.write(Array("hello\r\nAT+CSQ\r\n".utf8) + [0x00, 0xFF, 0xFD, 0xDF, 0xFD])
            for cut in 1..<frame.count { try rig.pty.write(Array(frame[..<cut])); usleep(2_000); try rig.pty.write([0x55]) }
            // The same press split byte by byte, 5 ms apart (a slow USB-serial bridge).
            for b in frame { try rig.pty.write([b]); usleep(5_000) }
        }
        let s = try status(rig)
        #expect(counter(s, "garbage_bytes") > 20, "garbage not counted: \(s["counters"]?.text ?? "")")
        #expect(counter(s, "frames") >= 2)
    }

    @Test func oneMebibyteOfNoiseAndBaudMismatchJunk() throws {
        let rig = try Rig()
        var rng = SystemRandomNumberGenerator()
        // What 9600-baud frames look like read at another speed: mostly these values.
        let mismatch: [UInt8] = [0x00, 0x80, 0xE0, 0xF0, 0xF8, 0xFC, 0xFE, 0xFF, 0x78, 0x06]
        let logBefore = rig.daemon.log.utf8.count
        let t0 = Date()
        try expectOnePress(rig) {
            for _ in 0..<64 {
                var chunk = (0..<16_384).map { _ in UInt8.random(in: 0...255, using: &rng) }
                // No accidental frame from the enrolled address.
                for i in chunk.indices where chunk[i] == 0xA1 { chunk[i] = 0xA0 }
                try rig.pty.write(chunk)
            }
            try rig.pty.write((0..<65_536).map { _ in mismatch.randomElement(using: &rng)! })
        }
        let elapsed = Date().timeIntervalSince(t0)
        let s = try status(rig)
        #expect(counter(s, "garbage_bytes") > 1_000_000, "noise not counted: \(s["counters"]?.text ?? "")")
        let logGrowth = rig.daemon.log.utf8.count - logBefore
        #expect(logGrowth < 64 * 1024, "1 MiB of noise grew the log by \(logGrowth) bytes")
        #expect(elapsed < 60, "noise + press took \(elapsed) s")
        #expect(try rig.waitDelivered(timeout: 20))
    }

    @Test func fiftyUnknownAddressesInterleavedWithAnEnrolledPress() throws {
        let rig = try Rig()
        let strangers = (0..<50).map { String(0xB0000 + $0 * 17, radix: 16, uppercase: true) }
        let logBefore = rig.daemon.log.utf8.count
        let latency = try expectOnePress(rig) {
            for round in 0..<20 {
                var bytes: [UInt8] = []
                for a in strangers { bytes += Rig.frame(a, UInt8(round % 16)) }
                try rig.pty.write(bytes)
                usleep(20_000)
            }
        }
        // Each stranger is reported once per unknown_report_s, never once per frame.
        let unknownEvents = rig.sub.wait(timeout: 3) { _ in false }.filter {
            $0.topic.hasSuffix("/events") && $0.json?["kind"]?.stringValue == "unknown_device"
        }
        let perAddress = Dictionary(grouping: unknownEvents.compactMap { $0.json?["address"]?.stringValue }, by: { $0 })
        let s = try status(rig)
        #expect(counter(s, "frames") >= 1000, "frames: \(counter(s, "frames"))")
        #expect(counter(s, "pages") >= 1)
        let logGrowth = rig.daemon.log.utf8.count - logBefore
        print("50 strangers x 20 frames: \(unknownEvents.count) unknown_device events, log +\(logGrowth) bytes")
        #expect(perAddress.values.allSatisfy { $0.count == 1 }, "an unknown address reported twice")
        #expect(unknownEvents.count <= 50, "\(unknownEvents.count) unknown_device events")
        #expect(logGrowth < 32 * 1024, "1,000 stranger frames grew the log by \(logGrowth) bytes")
        #expect(latency < 3, "the enrolled press waited \(latency) s behind 1,000 stranger frames")
        #expect(rig.daemon.isRunning)
    }

    /// A Sur-Gard line of 20 bytes but fewer than 20 Characters ("\r\n" is one grapheme) must be
    /// NAKed; it used to trap the daemon, and the receiver resent it: a crash loop (found by the
    /// fuzzer; inputs in Fuzz/Regressions/surgard/).
    @Test
    func surgardLineWithCRLFInsideIsNAKedNotFatal() throws {
        let broker = try Broker()
        let pty = try PseudoTerminal()
        let port = broker.port
        let daemon = try DaemonProcess { state, socket in
            SampleConfig.text(brokerPort: port, portPath: nil, stateDir: state, socket: socket, devices: [], extra: """
                [[port]]
                path = "\(pty.path)"
                driver = "surgard"
                """)
        }
        try daemon.start()
        defer { daemon.stop(); broker.stop() }
        try pty.write(Array("5011 181234E121010\r\n\u{14}".utf8))
        #expect(pty.read(timeoutMs: 5000) == [0x15], "not NAKed")
        usleep(300_000)
        #expect(daemon.isRunning, "the daemon died on a Sur-Gard line: \(daemon.log.suffix(400))")
    }
}
