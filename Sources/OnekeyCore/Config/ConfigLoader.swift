import Foundation

/// Turns the text of `onekeyd.toml` into a `GatewayConfig`, or the first error as `FILE:LINE: message`.
/// Pure: the caller reads the file and passes the environment (for `$STATE_DIRECTORY`, `$RUNTIME_DIRECTORY`).
public enum ConfigLoader {
    public static func parse(_ text: String, path: String, environment: [String: String] = [:]) throws(ConfigError) -> GatewayConfig {
        let root: TOMLTable
        do { root = try TOML.parse(text) } catch { throw ConfigError(file: path, line: error.line, message: error.message) }
        var builder = Builder(path: path, environment: environment)
        let config: GatewayConfig
        do { config = try builder.build(root) } catch let e as ConfigError { throw e } catch {
            throw ConfigError(file: path, line: 0, message: "\(error)")
        }
        return config
    }

    /// A copy in its own allocation, made after the parse tree: the configuration then shares no
    /// storage with the tree, whose pages, freed as a whole, can go back to the kernel (measured:
    /// a district's RSS after start 41.6 → 32.8 MiB, its heap 18.9 → 10.2 MiB). Strings of up to
    /// 15 bytes live inline and are kept.
    static func detached(_ s: String) -> String {
        let n = s.utf8.count
        guard n > 15 else { return s }
        return String(unsafeUninitializedCapacity: n) { buffer in
            var i = 0
            for b in s.utf8 { buffer[i] = b; i += 1 }
            return n
        }
    }

    /// A district file's syntax tree is the largest short-lived allocation the daemon makes
    /// (~8 MB for 20,000 devices); freed, it stays in the heap between live blocks. The daemon
    /// hands those pages back to the kernel after start-up, after READY, after a reload and hourly
    /// — never while the worker runs a job: `malloc_trim` walks every arena under its lock, and a
    /// reload's parse on the worker while the loop allocated stalled pages for over a second.
    public static func releaseFreedMemory() {
        #if os(Linux)
        _ = glibcMallocTrim(0)
        #endif
    }

    /// `[A-Za-z0-9_-]{1,64}`, the shape of every id (gateway, device, grid, member, policy).
    public static func isValidID(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64 && s.utf8.allSatisfy { TOMLParser.isBare($0) }
    }
}

/// Reads one table, remembering which keys were consumed so the rest can be reported as unknown.
struct Section {
    let table: TOMLTable
    let name: String
    let path: String
    var used = Set<String>()

    func error(_ line: Int, _ m: String) -> ConfigError { ConfigError(file: path, line: line, message: m) }

    func lineOf(_ key: String) -> Int { table[key]?.line ?? table.line }

    mutating func raw(_ key: String) -> TOMLValue? { used.insert(key); return table[key] }

    mutating func string(_ key: String, default def: String? = nil) throws -> String {
        guard let v = raw(key) else {
            if let def { return def }
            throw error(table.line, "\(name): missing required key '\(key)'")
        }
        guard case .string(let s) = v.kind else { throw error(v.line, "\(name).\(key) must be a string, not \(v.typeName)") }
        return s
    }

    mutating func integer(_ key: String, default def: Int? = nil, range: ClosedRange<Int>) throws -> Int {
        guard let v = raw(key) else {
            if let def { return def }
            throw error(table.line, "\(name): missing required key '\(key)'")
        }
        guard case .integer(let n) = v.kind else { throw error(v.line, "\(name).\(key) must be an integer, not \(v.typeName)") }
        guard n >= Int64(range.lowerBound), n <= Int64(range.upperBound) else {
            throw error(v.line, "\(name).\(key) = \(n) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return Int(n)
    }

    mutating func boolean(_ key: String, default def: Bool) throws -> Bool {
        guard let v = raw(key) else { return def }
        guard case .boolean(let b) = v.kind else { throw error(v.line, "\(name).\(key) must be a boolean, not \(v.typeName)") }
        return b
    }

    mutating func stringArray(_ key: String) throws -> (values: [String], line: Int)? {
        guard let v = raw(key) else { return nil }
        guard case .array(let items) = v.kind else { throw error(v.line, "\(name).\(key) must be an array of strings, not \(v.typeName)") }
        var out = [String]()
        for item in items {
            guard case .string(let s) = item.kind else { throw error(item.line, "\(name).\(key) must hold strings, not \(item.typeName)") }
            out.append(s)
        }
        return (out, v.line)
    }

    mutating func choice<T: RawRepresentable>(_ key: String, default def: T? = nil, _ type: T.Type) throws -> T where T.RawValue == String {
        let s = try string(key, default: def?.rawValue)
        guard let v = T(rawValue: s) else {
            throw error(lineOf(key), "\(name).\(key) = \"\(s)\" is not one of the allowed values")
        }
        return v
    }

    func finish() throws {
        for (key, value) in table.entries where !used.contains(key) {
            throw error(value.line, "unknown key '\(key)' in \(name)")
        }
    }
}

struct Builder {
    let path: String
    let environment: [String: String]

    func error(_ line: Int, _ m: String) -> ConfigError { ConfigError(file: path, line: line, message: m) }

    func tables(_ root: TOMLTable, _ key: String, single: Bool) throws -> [TOMLTable] {
        guard let v = root[key] else { return [] }
        switch v.kind {
        case .table(let t) where single: return [t]
        case .tableArray(let list) where !single: return list.tables
        default:
            throw error(v.line, single ? "'\(key)' must be a table: write [\(key)]" : "'\(key)' must be an array of tables: write [[\(key)]]")
        }
    }

    func checkID(_ id: String, _ line: Int, _ what: String) throws {
        guard ConfigLoader.isValidID(id) else {
            throw error(line, "\(what) id \"\(id)\" must match [A-Za-z0-9_-]{1,64}")
        }
    }

    /// A table's `id`: well formed and not used before by another table of the same kind.
    func uniqueID(_ s: inout Section, _ what: String, _ seen: inout [String: Int]) throws -> String {
        let id = try s.string("id")
        let line = s.lineOf("id")
        try checkID(id, line, what)
        if let first = seen[id] { throw error(line, "\(what) \"\(id)\" is defined twice (first on line \(first))") }
        seen[id] = line
        return id
    }

    mutating func build(_ root: TOMLTable) throws -> GatewayConfig {
        let known: Set<String> = ["gateway", "mqtt", "dedup", "store", "modem", "port", "device", "grid", "member", "shift", "policy"]
        for (key, value) in root.entries where !known.contains(key) {
            throw error(value.line, "unknown table or key '\(key)'")
        }

        // [gateway]
        guard let gt = try tables(root, "gateway", single: true).first else {
            throw error(1, "missing [gateway] table (it needs at least id)")
        }
        var g = Section(table: gt, name: "[gateway]", path: path)
        let gid = try g.string("id")
        try checkID(gid, g.lineOf("id"), "gateway")
        let stateDir = try g.string("state_dir", default: environment["STATE_DIRECTORY"].flatMap { $0.split(separator: ":").first.map(String.init) } ?? "/var/lib/onekeyd")
        let runtimeDefault = environment["RUNTIME_DIRECTORY"].flatMap { $0.split(separator: ":").first.map { "\($0)/control.sock" } } ?? "/run/onekeyd/control.sock"
        let socket = try g.string("control_socket", default: runtimeDefault)
        let tz = try g.string("timezone", default: "Asia/Shanghai")
        guard TimeZone(identifier: tz) != nil else { throw error(g.lineOf("timezone"), "[gateway].timezone \"\(tz)\" is not a known IANA time zone") }
        guard !stateDir.isEmpty else { throw error(g.lineOf("state_dir"), "[gateway].state_dir must not be empty") }
        guard !socket.isEmpty, socket.utf8.count < 108 else { throw error(g.lineOf("control_socket"), "[gateway].control_socket must be a path shorter than 108 bytes") }
        try g.finish()
        let gateway = GatewaySettings(id: gid, stateDir: stateDir, controlSocket: socket, timezone: tz)

        // [mqtt]
        var mqtt = MQTTSettings()
        if let mt = try tables(root, "mqtt", single: true).first {
            var m = Section(table: mt, name: "[mqtt]", path: path)
            mqtt.host = try m.string("host", default: mqtt.host)
            guard !mqtt.host.isEmpty else { throw error(m.lineOf("host"), "[mqtt].host must not be empty") }
            mqtt.port = try m.integer("port", default: mqtt.port, range: 1...65535)
            mqtt.tls = try m.boolean("tls", default: false)
            mqtt.caFile = try m.string("ca_file", default: "")
            mqtt.username = try m.string("username", default: "")
            mqtt.passwordFile = try m.string("password_file", default: "")
            mqtt.topicPrefix = try m.string("topic_prefix", default: mqtt.topicPrefix)
            let prefix = mqtt.topicPrefix
            guard !prefix.isEmpty, !prefix.contains("#"), !prefix.contains("+"), !prefix.hasPrefix("/"), !prefix.hasSuffix("/") else {
                throw error(m.lineOf("topic_prefix"), "[mqtt].topic_prefix \"\(prefix)\" must be a topic without wildcards or leading/trailing '/'")
            }
            mqtt.keepaliveSeconds = try m.integer("keepalive_s", default: mqtt.keepaliveSeconds, range: 5...65535)
            if !mqtt.passwordFile.isEmpty && mqtt.username.isEmpty {
                throw error(m.lineOf("password_file"), "[mqtt].password_file is set but username is empty")
            }
            if !mqtt.caFile.isEmpty && !mqtt.tls {
                throw error(m.lineOf("ca_file"), "[mqtt].ca_file is set but tls = false")
            }
            try m.finish()
        }

        // [dedup]
        var dedup = DedupSettings()
        if let dt = try tables(root, "dedup", single: true).first {
            var d = Section(table: dt, name: "[dedup]", path: path)
            dedup.repeatWindowMs = try d.integer("repeat_window_ms", default: dedup.repeatWindowMs, range: 0...600_000)
            dedup.pressMergeSeconds = try d.integer("press_merge_s", default: dedup.pressMergeSeconds, range: 0...86_400)
            dedup.unknownReportSeconds = try d.integer("unknown_report_s", default: dedup.unknownReportSeconds, range: 1...604_800)
            try d.finish()
        }

        // [store]
        var store = StoreSettings()
        if let st = try tables(root, "store", single: true).first {
            var s = Section(table: st, name: "[store]", path: path)
            store.keepDays = try s.integer("keep_days", default: store.keepDays, range: 1...36_500)
            try s.finish()
        }

        // [modem]
        var modem: ModemSettings?
        if let mt = try tables(root, "modem", single: true).first {
            var s = Section(table: mt, name: "[modem]", path: path)
            var m = ModemSettings()
            m.path = try s.string("path", default: "")
            if !m.path.isEmpty && !m.path.hasPrefix("/") { throw error(s.lineOf("path"), "[modem].path \"\(m.path)\" must be absolute") }
            m.baud = try s.integer("baud", default: m.baud, range: 50...4_000_000)
            guard SerialSpeeds.supported.contains(m.baud) else {
                throw error(s.lineOf("baud"), "[modem].baud = \(m.baud) is not a standard rate (\(SerialSpeeds.supported.map(String.init).joined(separator: " ")))")
            }
            m.afterSeconds = try s.integer("after_s", default: m.afterSeconds, range: 0...86_400)
            m.callAfterSeconds = try s.integer("call_after_s", default: m.callAfterSeconds, range: 0...86_400)
            try s.finish()
            modem = m
        }

        // [[member]]
        var members = [MemberConfig]()
        var memberLines = [String: Int]()
        for t in try tables(root, "member", single: false) {
            var s = Section(table: t, name: "[[member]]", path: path)
            let id = try uniqueID(&s, "member", &memberLines)
            let name = try s.string("name", default: id)
            var phone: String?
            if s.table["phone"] != nil {
                let p = try s.string("phone")
                guard MemberConfig.isValidPhone(p) else {
                    throw error(s.lineOf("phone"), "member \"\(id)\": phone \"\(p)\" must be E.164, like +8613800138000")
                }
                phone = p
            }
            members.append(MemberConfig(id: ConfigLoader.detached(id), name: ConfigLoader.detached(name), phone: phone.map(ConfigLoader.detached)))
            try s.finish()
        }

        /// Notify targets of a step or a fallback; `member:ID` must name a member.
        func targets(_ names: [String], _ line: Int) throws -> [NotifyTarget] {
            var out = [NotifyTarget]()
            for n in names {
                guard let target = NotifyTarget(n) else {
                    throw error(line, "unknown notify target \"\(n)\" (grid:primary | grid:backup | grid:all | grid:roster | member:ID)")
                }
                if case .member(let m) = target, memberLines[m] == nil {
                    throw error(line, "notify target \"\(n)\" names an unknown member \"\(m)\"")
                }
                out.append(target)
            }
            return out
        }

        // [[policy]] with [[policy.step]]
        var policies = [PolicyConfig]()
        var policyLines = [String: Int]()
        for t in try tables(root, "policy", single: false) {
            var s = Section(table: t, name: "[[policy]]", path: path)
            let id = try uniqueID(&s, "policy", &policyLines)
            let repeatCount = try s.integer("repeat", default: 0, range: 0...100)
            let repeatAfter = try s.integer("repeat_after_s", default: 60, range: 0...86_400)
            let ackTimeout = try s.integer("ack_timeout_s", default: 0, range: 0...86_400)
            let remind = try s.integer("remind_s", default: 300, range: 1...86_400)
            var fallback = PolicyConfig.defaultFallback
            if let (names, line) = try s.stringArray("fallback") {
                guard !names.isEmpty else {
                    throw error(line, "policy \"\(id)\": fallback must name at least one target (leave it out for the default, grid:roster)")
                }
                fallback = try targets(names, line)
            }
            var steps = [PolicyStep]()
            let stepValue = s.raw("step")
            guard let stepValue else { throw error(t.line, "policy \"\(id)\" has no [[policy.step]]") }
            guard case .tableArray(let stepTables) = stepValue.kind else {
                throw error(stepValue.line, "policy \"\(id)\": 'step' must be written as [[policy.step]]")
            }
            var lastAfter = -1
            for st in stepTables {
                var ss = Section(table: st, name: "[[policy.step]]", path: path)
                let after = try ss.integer("after_s", range: 0...604_800)
                guard after >= lastAfter else {
                    throw error(ss.lineOf("after_s"), "policy \"\(id)\": step after_s = \(after) comes before the previous step's \(lastAfter)")
                }
                lastAfter = after
                guard let (names, line) = try ss.stringArray("notify"), !names.isEmpty else {
                    throw error(ss.lineOf("notify"), "[[policy.step]] needs a non-empty notify list")
                }
                steps.append(PolicyStep(afterSeconds: after, notify: try targets(names, line)))
                try ss.finish()
            }
            policies.append(PolicyConfig(id: id, repeatCount: repeatCount, repeatAfterSeconds: repeatAfter, steps: steps,
                                         ackTimeoutSeconds: ackTimeout, fallback: fallback, remindSeconds: remind))
            try s.finish()
        }

        // [[grid]]
        var grids = [GridConfig]()
        var gridLines = [String: Int]()
        for t in try tables(root, "grid", single: false) {
            var s = Section(table: t, name: "[[grid]]", path: path)
            let id = try uniqueID(&s, "grid", &gridLines)
            let policy = try s.string("policy", default: "default")
            if policyLines[policy] == nil {
                if policy == "default" {
                    if !policies.contains(where: { $0.id == "default" }) { policies.append(.builtInDefault) }
                } else {
                    throw error(s.lineOf("policy"), "grid \"\(id)\" names an unknown policy \"\(policy)\"")
                }
            }
            grids.append(GridConfig(id: ConfigLoader.detached(id), name: ConfigLoader.detached(try s.string("name", default: id)), policy: ConfigLoader.detached(policy)))
            try s.finish()
        }

        // [[shift]]
        var shifts = [ShiftConfig]()
        for t in try tables(root, "shift", single: false) {
            var s = Section(table: t, name: "[[shift]]", path: path)
            let grid = try s.string("grid")
            guard gridLines[grid] != nil else { throw error(s.lineOf("grid"), "shift names an unknown grid \"\(grid)\"") }
            let member = try s.string("member")
            guard memberLines[member] != nil else { throw error(s.lineOf("member"), "shift names an unknown member \"\(member)\"") }
            let role = try s.choice("role", default: ShiftRole.primary, ShiftRole.self)
            var days = Set(Weekday.allCases)
            if let (names, line) = try s.stringArray("days") {
                days = []
                for n in names {
                    guard let d = Weekday(rawValue: n) else { throw error(line, "unknown day \"\(n)\" (mon tue wed thu fri sat sun)") }
                    guard days.insert(d).inserted else { throw error(line, "day \"\(n)\" is listed twice") }
                }
                guard !days.isEmpty else { throw error(line, "shift days must not be empty") }
            }
            let start = try clock(s.string("start"), s.lineOf("start"))
            let end = try clock(s.string("end"), s.lineOf("end"))
            shifts.append(ShiftConfig(grid: ConfigLoader.detached(grid), member: ConfigLoader.detached(member), role: role, days: days, start: start, end: end))
            try s.finish()
        }

        // [[port]]
        var ports = [PortConfig]()
        var portLines = [String: Int]()
        for t in try tables(root, "port", single: false) {
            var s = Section(table: t, name: "[[port]]", path: path)
            let p = try s.string("path")
            guard p.hasPrefix("/") else { throw error(s.lineOf("path"), "[[port]].path \"\(p)\" must be absolute") }
            if let first = portLines[p] { throw error(s.lineOf("path"), "port \"\(p)\" is defined twice (first on line \(first))") }
            portLines[p] = s.lineOf("path")
            let driver = try s.choice("driver", DriverKind.self)
            let baud = try s.integer("baud", default: driver.defaultBaud, range: 50...4_000_000)
            guard SerialSpeeds.supported.contains(baud) else {
                throw error(s.lineOf("baud"), "[[port]].baud = \(baud) is not a standard rate (\(SerialSpeeds.supported.map(String.init).joined(separator: " ")))")
            }
            let parity = try s.choice("parity", default: Parity.none, Parity.self)
            let bits = try s.integer("data_bits", default: 8, range: 5...8)
            if !driver.isSerial && (s.table["baud"] != nil || s.table["parity"] != nil || s.table["data_bits"] != nil) {
                throw error(t.line, "[[port]] \"\(p)\": baud, parity and data_bits apply to serial drivers only")
            }
            ports.append(PortConfig(path: p, driver: driver, baud: baud, parity: parity, dataBits: bits, line: t.line))
            try s.finish()
        }

        // [[device]]
        var devices = [DeviceConfig]()
        var deviceLines = [String: Int]()
        var addressLines = [String: Int]()
        for t in try tables(root, "device", single: false) {
            var s = Section(table: t, name: "[[device]]", path: path)
            let id = try uniqueID(&s, "device", &deviceLines)
            let driver = try s.choice("driver", DriverKind.self)
            var address = try s.string("address")
            switch driver {
            case .ev1527:
                guard address.utf8.count == 5, address.allSatisfy(\.isHexDigit) else {
                    throw error(s.lineOf("address"), "device \"\(id)\": ev1527 address \"\(address)\" must be 5 hex digits")
                }
                address = address.uppercased()
            case .surgard:
                guard address.utf8.count == 4, address.allSatisfy(\.isHexDigit) else {
                    throw error(s.lineOf("address"), "device \"\(id)\": surgard account \"\(address)\" must be 4 hex digits")
                }
                address = address.uppercased()
            case .evdev:
                guard !address.isEmpty else { throw error(s.lineOf("address"), "device \"\(id)\": evdev address must not be empty") }
            }
            let key = "\(driver.rawValue)/\(address)"
            if let first = addressLines[key] {
                throw error(s.lineOf("address"), "device \"\(id)\": \(driver.rawValue) address \(address) is already enrolled (line \(first))")
            }
            addressLines[key] = s.lineOf("address")
            let grid = try s.string("grid")
            guard gridLines[grid] != nil else { throw error(s.lineOf("grid"), "device \"\(id)\" names an unknown grid \"\(grid)\"") }
            let resident = try s.string("resident", default: "")
            let location = try s.string("location", default: "")
            let supervision = try s.integer("supervision_s", default: 0, range: 0...31_536_000)
            var codes = DeviceConfig.defaultCodes
            if let cv = s.raw("codes") {
                guard case .table(let ct) = cv.kind else { throw error(cv.line, "device \"\(id)\": codes must be a table like { \"8\" = \"panic\" }") }
                guard driver == .ev1527 else { throw error(cv.line, "device \"\(id)\": codes apply to ev1527 devices only") }
                codes = [:]
                for (k, v) in ct.entries {
                    guard k.utf8.count == 1, let nibble = UInt8(k, radix: 16) else {
                        throw error(v.line, "device \"\(id)\": code \"\(k)\" must be one hex digit (the key nibble)")
                    }
                    guard case .string(let kindName) = v.kind, let kind = EventKind(rawValue: kindName), kind != .unknownDevice else {
                        throw error(v.line, "device \"\(id)\": code \"\(k)\" must map to an event kind (panic, medical, cancel, test, …)")
                    }
                    codes[String(nibble, radix: 16, uppercase: true)] = kind
                }
            }
            devices.append(DeviceConfig(id: ConfigLoader.detached(id), driver: driver, address: ConfigLoader.detached(address), grid: ConfigLoader.detached(grid),
                                        resident: ConfigLoader.detached(resident), location: ConfigLoader.detached(location),
                                        supervisionSeconds: supervision, codes: codes))
            try s.finish()
        }

        return GatewayConfig(path: path, gateway: gateway, mqtt: mqtt, dedup: dedup, ports: ports, devices: devices,
                             grids: grids, members: members, shifts: shifts, policies: policies, store: store, modem: modem)
    }

    func clock(_ text: String, _ line: Int) throws -> Int {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2,
              let h = Int(parts[0]), let m = Int(parts[1]), (0...24).contains(h), (0...59).contains(m), h < 24 || m == 0
        else { throw error(line, "time \"\(text)\" must be HH:MM (00:00 to 24:00)") }
        return h * 60 + m
    }
}

public enum SerialSpeeds {
    public static let supported: [Int] = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400]
}

#if os(Linux)
/// glibc's `int malloc_trim(size_t pad)` (declared in <malloc.h>, which the Glibc module leaves out).
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
