import Foundation
import Glibc
import OnekeyHarness
import Testing

/// Hostile configuration files against the real `onekeyd --check-config` (and plain start):
/// every malformed-file class must exit 78 with one stderr line `FILE:LINE: message` whose line
/// is the offending one — never a crash (signal), never a hang (runCommand kills after 60 s).
@Suite struct ConfigAbuseTests {
    static let good = SampleConfig.text(brokerPort: 1883, portPath: nil, stateDir: "/tmp/onekey-cfg-abuse", socket: "/tmp/onekey-cfg-abuse.sock")

    struct Verdict { var status: Int32; var line: Int; var stderr: String; var seconds: Double }

    static func check(_ bytes: [UInt8], start: Bool = false) throws -> Verdict {
        let dir = try TempDirectory.make("cfg-abuse")
        let path = dir + "/onekeyd.toml"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let t0 = Date()
        let args = start ? ["--config", path] : ["--check-config", "--config", path]
        let r = try runCommand(Binaries.path("onekeyd"), args, timeout: 60)
        let text = r.stderr.trimmingCharacters(in: .newlines)
        var line = -1
        if text.hasPrefix(path + ":") { line = Int(text.dropFirst(path.count + 1).prefix { $0.isNumber }) ?? -1 }
        return Verdict(status: r.status, line: line, stderr: text, seconds: Date().timeIntervalSince(t0))
    }

    /// 78, one line, and the line number points at `expectLine` (1-based) when given
    /// (`orWholeFile`: line 0, "the file as a whole", is accepted too).
    static func expectRejected(_ what: String, _ bytes: [UInt8], line expectLine: Int? = nil, orWholeFile: Bool = false) throws {
        let v = try check(bytes)
        #expect(v.status == 78, "\(what): exit \(v.status), stderr \(v.stderr.prefix(300))")
        #expect(v.line >= 0, "\(what): no FILE:LINE prefix: \(v.stderr.prefix(300))")
        #expect(!v.stderr.contains("\n"), "\(what): more than one line: \(v.stderr.prefix(300))")
        #expect(v.stderr.utf8.count < 4096, "\(what): a \(v.stderr.utf8.count)-byte error line")
        if let expectLine { #expect(v.line == expectLine || (orWholeFile && v.line == 0), "\(what): line \(v.line), expected \(expectLine): \(v.stderr.prefix(200))") }
    }

    static var goodLines: Int { good.split(separator: "\n", omittingEmptySubsequences: false).count }

    @Test func theSampleIsGood() throws {
        let v = try Self.check(Array(Self.good.utf8))
        #expect(v.status == 0, "\(v.stderr)")
    }

    /// Deep nesting (arrays, inline tables, a 50,000-segment dotted header) is refused with
    /// FILE:LINE, never a stack overflow (it used to kill onekeyd with SIGSEGV).
    @Test func deepNesting() throws {
        let n = Self.goodLines
        try deepNestingCases(n)
    }

    func deepNestingCases(_ n: Int) throws {
        try Self.expectRejected("deep arrays", Array((Self.good + "x = " + String(repeating: "[", count: 200_000) + "\n").utf8), line: n)
        try Self.expectRejected("deep inline tables", Array((Self.good + "x = " + String(repeating: "{ a = ", count: 100_000) + "1\n").utf8), line: n)
        try Self.expectRejected("deep dotted table header", Array((Self.good + "[" + Array(repeating: "a", count: 50_000).joined(separator: ".") + "]\n").utf8), line: n)
    }

    @Test func tenMegabytes() throws {
        // 10 MB of comments, then an unknown key on the last line: linear time, right line number.
        let filler = String(repeating: "# " + String(repeating: "x", count: 97) + "\n", count: 100_000)
        let text = Self.good + filler + "[frobnicate]\n"
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count - 1
        let v = try Self.check(Array(text.utf8))
        #expect(v.status == 78 && v.line == lines, "exit \(v.status) line \(v.line) (expected \(lines)): \(v.stderr.prefix(200))")
        #expect(v.seconds < 30, "a 10 MB file took \(v.seconds) s")
        // One 10 MB line (a string that never ends).
        try Self.expectRejected("10 MB unterminated string", Array((Self.good + "[mqtt]\nhost = \"" + String(repeating: "h", count: 10_000_000)).utf8))
    }

    @Test func nulBytesAndInvalidUTF8() throws {
        let n = Self.goodLines
        try Self.expectRejected("NUL in a string", Array((Self.good + "[[member]]\nid = \"m-x\"\n").utf8) + Array("name = \"a".utf8) + [0] + Array("b\"\n".utf8), line: n + 2)
        try Self.expectRejected("NUL in a comment", Array(Self.good.utf8) + Array("# a".utf8) + [0] + [0x0A], line: n)
        try Self.expectRejected("NUL bare", Array(Self.good.utf8) + [0, 0, 0, 0x0A], line: n)
        try Self.expectRejected("invalid UTF-8 in a string", Array((Self.good + "[[member]]\nid = \"m-x\"\n").utf8) + Array("name = \"".utf8) + [0xFF, 0xFE, 0xC0, 0x80] + Array("\"\n".utf8), line: n + 2, orWholeFile: true)
        try Self.expectRejected("invalid UTF-8 in a comment", Array(Self.good.utf8) + Array("# caf".utf8) + [0xE9] + [0x0A], line: n, orWholeFile: true)
        try Self.expectRejected("UTF-16 file", [0xFF, 0xFE] + Array("[gateway]\nid = \"x\"\n".utf8).flatMap { [$0, 0] })
    }

    @Test func duplicatesAndRedefinitions() throws {
        let n = Self.goodLines
        try Self.expectRejected("duplicate table", Array((Self.good + "[mqtt]\nport = 1\n").utf8), line: n)
        try Self.expectRejected("duplicate key", Array((Self.good.replacingOccurrences(of: "keepalive_s = 10", with: "keepalive_s = 10\nkeepalive_s = 11")).utf8))
        try Self.expectRejected("table then array of tables", Array((Self.good + "[gateway.x]\n[[gateway.x]]\n").utf8))
        try Self.expectRejected("duplicate device id", Array((Self.good + "[[device]]\nid = \"btn-chen-401\"\ndriver = \"ev1527\"\naddress = \"00001\"\ngrid = \"grid-07\"\n").utf8))
    }

    @Test func truncatedAndMalformed() throws {
        let cases: [(String, String)] = [
            ("unterminated table header", "[mqtt\n"), ("unterminated array", "x = [1, 2\n"),
            ("unterminated inline table", "x = { a = 1\n"), ("bare value", "= 1\n"), ("no value", "x =\n"),
            ("bad escape", "x = \"\\q\"\n"), ("bad unicode escape", "x = \"\\uD800\"\n"), ("huge integer", "x = 99999999999999999999999\n"),
            ("unterminated multi-line string", "x = \"\"\"abc\n"), ("header garbage", "[[]]\n"), ("control char", "x = \"\u{7}\"\n"),
        ]
        for (what, tail) in cases { try Self.expectRejected(what, Array((Self.good + tail).utf8)) }
        // Truncations of the good file at every 97th byte: either valid or 78 with a line, never a crash.
        let bytes = Array(Self.good.utf8)
        for cut in stride(from: 1, to: bytes.count, by: 97) {
            let v = try Self.check(Array(bytes[..<cut]))
            #expect(v.status == 0 || (v.status == 78 && v.line >= 0), "cut at \(cut): exit \(v.status) \(v.stderr.prefix(200))")
        }
    }

    @Test func theDaemonItselfRefusesBeforeOpeningAnything() throws {
        let v = try Self.check(Array((Self.good + "[[member]]\nid = 5\n").utf8), start: true)
        #expect(v.status == 78 && v.line == Self.goodLines + 1, "exit \(v.status): \(v.stderr.prefix(200))")
        let deep = try Self.check(Array((Self.good + "x = " + String(repeating: "[", count: 200_000) + "\n").utf8), start: true)
        #expect(deep.status == 78 && deep.line >= 0, "exit \(deep.status): \(deep.stderr.prefix(200))")
    }
}
