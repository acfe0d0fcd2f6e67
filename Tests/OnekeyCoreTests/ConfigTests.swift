import Foundation
import Testing
@testable import OnekeyCore

@Suite struct ConfigTests {
    static let minimal = """
        [gateway]
        id = "gw-1"

        [[grid]]
        id = "grid-07"

        [[member]]
        id = "m-135"

        [[device]]
        id = "btn-1"
        driver = "ev1527"
        address = "a1b2c"
        grid = "grid-07"

        [[shift]]
        grid = "grid-07"
        member = "m-135"
        start = "20:00"
        end = "08:00"
        """

    func error(_ text: String) -> ConfigError? {
        do { _ = try ConfigLoader.parse(text, path: "t.toml"); return nil } catch { return error }
    }

    @Test func exampleConfigIsValid() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../config/onekeyd.toml")
        let c = try ConfigLoader.parse(try String(contentsOf: url, encoding: .utf8), path: "onekeyd.toml")
        #expect(c.gateway.id == "shuanghedian-01")
        #expect(c.devices.count == 2 && c.devices[0].codes == DeviceConfig.defaultCodes)
        #expect(c.policies.first?.steps.map(\.afterSeconds) == [0, 60, 180])
        #expect(c.shifts[1].wraps)
    }

    @Test func defaultsAndNormalisation() throws {
        let c = try ConfigLoader.parse(Self.minimal, path: "t.toml", environment: ["STATE_DIRECTORY": "/var/lib/x", "RUNTIME_DIRECTORY": "/run/x"])
        #expect(c.gateway.stateDir == "/var/lib/x")
        #expect(c.gateway.controlSocket == "/run/x/control.sock")
        #expect(c.mqtt == MQTTSettings())
        #expect(c.dedup.repeatWindowMs == 3000 && c.dedup.pressMergeSeconds == 300)
        #expect(c.devices[0].address == "A1B2C")
        #expect(c.grids[0].policy == "default" && c.policy(id: "default") == .builtInDefault)
        #expect(c.shifts[0].role == .primary && c.shifts[0].days.count == 7)
    }

    @Test func unknownKeyNamesFileAndLine() {
        let e = error(Self.minimal.replacingOccurrences(of: "id = \"gw-1\"", with: "id = \"gw-1\"\ncolour = \"red\""))
        #expect(e?.description == "t.toml:3: unknown key 'colour' in [gateway]")
    }

    @Test func wrongTypeNamesFileAndLine() {
        let e = error(Self.minimal + "\n[mqtt]\nport = \"1883\"\n")
        #expect(e?.line == 22)
        #expect(e?.message.contains("must be an integer") == true)
    }

    @Test func danglingGridReference() {
        let e = error(Self.minimal.replacingOccurrences(of: "address = \"a1b2c\"\ngrid = \"grid-07\"", with: "address = \"a1b2c\"\ngrid = \"grid-99\""))
        #expect(e?.line == 14)
        #expect(e?.message == "device \"btn-1\" names an unknown grid \"grid-99\"")
    }

    @Test func badGatewayID() {
        let e = error(Self.minimal.replacingOccurrences(of: "id = \"gw-1\"", with: "id = \"gw 1/x\""))
        #expect(e?.line == 2)
        #expect(e?.message.contains("[A-Za-z0-9_-]{1,64}") == true)
    }

    @Test func otherDanglingReferencesAndBadValues() {
        let cases: [(String, Int, String)] = [
            (Self.minimal.replacingOccurrences(of: "member = \"m-135\"", with: "member = \"m-999\""), 18, "unknown member"),
            (Self.minimal + "\n[[policy]]\nid = \"p\"\n[[policy.step]]\nafter_s = 0\nnotify = [\"member:ghost\"]\n", 25, "unknown member \"ghost\""),
            (Self.minimal + "\n[[policy]]\nid = \"p\"\n[[policy.step]]\nafter_s = 0\nnotify = [\"grid:everyone\"]\n", 25, "unknown notify target"),
            (Self.minimal.replacingOccurrences(of: "[[grid]]\nid = \"grid-07\"", with: "[[grid]]\nid = \"grid-07\"\npolicy = \"nope\""), 6, "unknown policy"),
            (Self.minimal.replacingOccurrences(of: "address = \"a1b2c\"", with: "address = \"a1b2\""), 13, "5 hex digits"),
            (Self.minimal.replacingOccurrences(of: "end = \"08:00\"", with: "end = \"8am\""), 20, "HH:MM"),
            (Self.minimal + "\n[[port]]\npath = \"/dev/ttyUSB0\"\ndriver = \"ev1527\"\nbaud = 9601\n", 24, "standard rate"),
            (Self.minimal + "\n[[port]]\npath = \"/dev/ttyUSB0\"\ndriver = \"zigbee\"\n", 23, "not one of the allowed values"),
            (Self.minimal + "\n[gateway]\nid = \"x\"\n", 21, "defined twice"),
            (Self.minimal + "\n[bogus]\n", 21, "unknown table"),
            ("[gateway]\nid = \"a\"\ntimezone = \"Mars/Olympus\"\n", 3, "IANA"),
            ("[gateway]\nid = \"a\n", 2, "unterminated string"),
            ("[gateway]\nid = 'a'\n[[grid]]\nid = \"g\"\n[[device]]\nid = \"d\"\ndriver = \"ev1527\"\naddress = \"A1B2C\"\ngrid = \"g\"\ncodes = { \"8\" = \"explode\" }\n", 10, "event kind"),
        ]
        for (text, line, fragment) in cases {
            let e = error(text)
            #expect(e != nil, "expected an error containing \(fragment)")
            #expect(e?.line == line, "\(e?.description ?? "nil") should be on line \(line)")
            #expect(e?.message.contains(fragment) == true, "\(e?.description ?? "nil") should mention \(fragment)")
        }
    }

    /// Fuzz: mutated configs never trap; they parse or fail with a line inside the file.
    @Test func fuzzMutatedConfigs() {
        var rng = SystemRandomNumberGenerator()
        let base = Array(Self.minimal.utf8)
        let alphabet = Array("[]{}=\"',.#\n 0123456789abcxyz-_:".utf8)
        for _ in 0..<3000 {
            var b = base
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let i = Int.random(in: 0..<b.count, using: &rng)
                switch Int.random(in: 0...2, using: &rng) {
                case 0: b[i] = alphabet.randomElement(using: &rng)!
                case 1: b.remove(at: i)
                default: b.insert(alphabet.randomElement(using: &rng)!, at: i)
                }
            }
            let text = String(decoding: b, as: UTF8.self)
            if let e = error(text) {
                #expect(e.line >= 0 && e.line <= text.split(separator: "\n", omittingEmptySubsequences: false).count + 1, "\(e)")
            }
        }
    }
}

@Suite struct TOMLTests {
    @Test func valuesAndStructure() throws {
        let t = try TOML.parse("""
            a = 1_000 # comment
            b = -0x10
            c = "x\\ty\\u00e9"
            d = 'raw\\n'
            e = [1, 2,
                 3, ]
            f = { g = true, "h i" = 1.5 }
            [t.u]
            v = "w"
            [[arr]]
            x = 1
            [[arr]]
            x = 2
            [[arr.sub]]
            y = 3
            """)
        guard case .integer(1000) = t["a"]?.kind, case .integer(-16) = t["b"]?.kind,
              case .string("x\tyé") = t["c"]?.kind, case .string("raw\\n") = t["d"]?.kind,
              case .array(let e) = t["e"]?.kind, case .table(let f) = t["f"]?.kind,
              case .table(let tt) = t["t"]?.kind, case .table(let u) = tt["u"]?.kind,
              case .tableArray(let arr) = t["arr"]?.kind else {
            Issue.record("unexpected structure"); return
        }
        #expect(e.count == 3)
        #expect(f["h i"] != nil)
        #expect(u["v"]?.line == 9)
        #expect(arr.count == 2)
        guard case .tableArray(let sub) = arr[1]["sub"]?.kind else { Issue.record("no sub"); return }
        #expect(sub.count == 1)
    }

    @Test func duplicateKeysAreErrors() {
        #expect(throws: TOMLError.self) { try TOML.parse("a = 1\na = 2\n") }
        #expect(throws: TOMLError.self) { try TOML.parse("a = 1979-05-27\n") }
        #expect(throws: TOMLError.self) { try TOML.parse("a = \"\"\"x\"\"\"\n") }
    }
}
