/// The configuration of CONTRACT §3, validated. Built only by `ConfigLoader`, so every value
/// here has passed its checks and every reference (grid, member, policy, target) resolves.
public struct GatewayConfig: Sendable, Equatable {
    public var path: String
    public var gateway: GatewaySettings
    public var mqtt: MQTTSettings
    public var dedup: DedupSettings
    public var ports: [PortConfig]
    /// The id lookups below go through an index kept in step with each list (rebuilt when the
    /// list is changed, which only tests do), so a 20,000-device file is never scanned per frame.
    public var devices: [DeviceConfig] { didSet { deviceIndex = IDIndex(devices, \.id) } }
    public var grids: [GridConfig] { didSet { gridIndex = IDIndex(grids, \.id) } }
    public var members: [MemberConfig] { didSet { memberIndex = IDIndex(members, \.id) } }
    public var shifts: [ShiftConfig]
    public var policies: [PolicyConfig] { didSet { policyIndex = IDIndex(policies, \.id) } }
    public var store: StoreSettings = StoreSettings()
    /// The second path (CONTRACT §11); nil when no `[modem]` table is configured.
    public var modem: ModemSettings? = nil

    private var deviceIndex: IDIndex
    private var gridIndex: IDIndex
    private var memberIndex: IDIndex
    private var policyIndex: IDIndex

    public init(path: String, gateway: GatewaySettings, mqtt: MQTTSettings, dedup: DedupSettings, ports: [PortConfig],
                devices: [DeviceConfig], grids: [GridConfig], members: [MemberConfig], shifts: [ShiftConfig],
                policies: [PolicyConfig], store: StoreSettings = StoreSettings(), modem: ModemSettings? = nil) {
        self.path = path; self.gateway = gateway; self.mqtt = mqtt; self.dedup = dedup; self.ports = ports
        self.devices = devices; self.grids = grids; self.members = members; self.shifts = shifts
        self.policies = policies; self.store = store; self.modem = modem
        deviceIndex = IDIndex(devices, \.id)
        gridIndex = IDIndex(grids, \.id)
        memberIndex = IDIndex(members, \.id)
        policyIndex = IDIndex(policies, \.id)
    }

    public func device(id: String) -> DeviceConfig? { deviceIndex[id].map { devices[$0] } }
    public func grid(id: String) -> GridConfig? { gridIndex[id].map { grids[$0] } }
    public func member(id: String) -> MemberConfig? { memberIndex[id].map { members[$0] } }
    public func policy(id: String) -> PolicyConfig? { policyIndex[id].map { policies[$0] } }

    /// The indexes follow from the lists, so only the lists are compared.
    public static func == (l: GatewayConfig, r: GatewayConfig) -> Bool {
        l.path == r.path && l.gateway == r.gateway && l.mqtt == r.mqtt && l.dedup == r.dedup && l.ports == r.ports
            && l.devices == r.devices && l.grids == r.grids && l.members == r.members && l.shifts == r.shifts
            && l.policies == r.policies && l.store == r.store && l.modem == r.modem
    }
}

/// Id → position of the first element with that id (the loader refuses duplicates).
struct IDIndex: Sendable {
    private var positions: [String: Int]
    init<T>(_ list: [T], _ id: KeyPath<T, String>) {
        positions = Dictionary(minimumCapacity: list.count)
        for (n, x) in list.enumerated() where positions[x[keyPath: id]] == nil { positions[x[keyPath: id]] = n }
    }
    subscript(id: String) -> Int? { positions[id] }
}

public struct GatewaySettings: Sendable, Equatable {
    public var id: String
    public var stateDir: String
    public var controlSocket: String
    public var timezone: String
}

public struct MQTTSettings: Sendable, Equatable {
    public var host: String = "127.0.0.1"
    public var port: Int = 1883
    public var tls: Bool = false
    public var caFile: String = ""
    public var username: String = ""
    public var passwordFile: String = ""
    public var topicPrefix: String = "onekey/v1"
    public var keepaliveSeconds: Int = 30
}

public struct DedupSettings: Sendable, Equatable {
    public var repeatWindowMs: Int = 3000
    public var pressMergeSeconds: Int = 300
    /// An address that is not enrolled is reported at most once per this window (with a count).
    public var unknownReportSeconds: Int = 600
}

public struct StoreSettings: Sendable, Equatable {
    /// Events and closed alerts older than this are pruned; open alerts never.
    public var keepDays: Int = 400
    public init(keepDays: Int = 400) { self.keepDays = keepDays }
}

/// `[modem]`: a GSM/LTE modem's AT port, the second path when the broker is unreachable.
public struct ModemSettings: Sendable, Equatable {
    /// Empty when the modem is to be found by udev (`ONEKEY_DRIVER=modem`).
    public var path: String = ""
    public var baud: Int = 115_200
    /// Pages go by SMS once the broker has been unreachable this long.
    public var afterSeconds: Int = 30
    /// An emergency unacknowledged this long after it was raised, broker unreachable: ring.
    public var callAfterSeconds: Int = 120
    public init(path: String = "", baud: Int = 115_200, afterSeconds: Int = 30, callAfterSeconds: Int = 120) {
        self.path = path; self.baud = baud; self.afterSeconds = afterSeconds; self.callAfterSeconds = callAfterSeconds
    }
}

public enum Parity: String, Sendable, Equatable { case none, even, odd }

public struct PortConfig: Sendable, Equatable {
    public var path: String
    public var driver: DriverKind
    public var baud: Int
    public var parity: Parity
    public var dataBits: Int
    /// Line of the `[[port]]` header; 0 for ports found through udev.
    public var line: Int
    /// The udev ID_SERIAL of a discovered input device (evdev devices may be enrolled by it).
    public var serial: String? = nil

    public init(path: String, driver: DriverKind, baud: Int, parity: Parity, dataBits: Int, line: Int, serial: String? = nil) {
        self.path = path; self.driver = driver; self.baud = baud; self.parity = parity; self.dataBits = dataBits; self.line = line
        self.serial = serial
    }
}

public struct DeviceConfig: Sendable, Equatable {
    public var id: String
    public var driver: DriverKind
    public var address: String
    public var grid: String
    public var resident: String
    public var location: String
    public var supervisionSeconds: Int
    /// ev1527 key nibble (one upper-case hex digit) → kind.
    public var codes: [String: EventKind]

    public static let defaultCodes: [String: EventKind] = ["8": .panic, "4": .cancel, "2": .panic, "1": .test]
}

public struct GridConfig: Sendable, Equatable {
    public var id: String
    public var name: String
    public var policy: String
}

public struct MemberConfig: Sendable, Equatable {
    public var id: String
    public var name: String
    /// E.164 (`+8613800138000`), optional: the second path texts and calls this number.
    public var phone: String? = nil
    public init(id: String, name: String, phone: String? = nil) { self.id = id; self.name = name; self.phone = phone }

    /// `+` and 7 to 15 digits, the first not 0.
    public static func isValidPhone(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count >= 8, b.count <= 16, b[0] == 43, b[1] >= 49, b[1] <= 57 else { return false }
        return b.dropFirst().allSatisfy { $0 >= 48 && $0 <= 57 }
    }
}

public enum ShiftRole: String, Sendable, Equatable { case primary, backup }

public enum Weekday: String, Sendable, CaseIterable, Equatable {
    case sun, mon, tue, wed, thu, fri, sat
    /// 1 = Sunday … 7 = Saturday, as Foundation's Calendar counts.
    public var calendarIndex: Int { Weekday.allCases.firstIndex(of: self)! + 1 }
    public init?(calendarIndex: Int) {
        guard (1...7).contains(calendarIndex) else { return nil }
        self = Weekday.allCases[calendarIndex - 1]
    }
}

public struct ShiftConfig: Sendable, Equatable {
    public var grid: String
    public var member: String
    public var role: ShiftRole
    public var days: Set<Weekday>
    /// Minutes after local midnight.
    public var start: Int
    public var end: Int

    /// A shift whose end is not after its start runs past midnight into the next day;
    /// start == end is a 24-hour shift.
    public var wraps: Bool { end <= start }
}

public enum NotifyTarget: Sendable, Equatable, CustomStringConvertible {
    case gridPrimary, gridBackup, gridAll
    /// Everyone holding any shift on the grid, on call now or not (the default fallback).
    case gridRoster
    case member(String)

    public init?(_ text: String) {
        switch text {
        case "grid:primary": self = .gridPrimary
        case "grid:backup": self = .gridBackup
        case "grid:all": self = .gridAll
        case "grid:roster": self = .gridRoster
        default:
            guard text.hasPrefix("member:"), text.count > 7 else { return nil }
            self = .member(String(text.dropFirst(7)))
        }
    }

    public var description: String {
        switch self {
        case .gridPrimary: return "grid:primary"
        case .gridBackup: return "grid:backup"
        case .gridAll: return "grid:all"
        case .gridRoster: return "grid:roster"
        case .member(let m): return "member:\(m)"
        }
    }
}

public struct PolicyStep: Sendable, Equatable {
    public var afterSeconds: Int
    public var notify: [NotifyTarget]
}

public struct PolicyConfig: Sendable, Equatable {
    public var id: String
    public var repeatCount: Int
    public var repeatAfterSeconds: Int
    public var steps: [PolicyStep]
    /// > 0: an acked alert not resolved this long after the ack opens again (0 = off).
    public var ackTimeoutSeconds: Int = 0
    /// Paged (reason `fallback`) whenever a step resolves to nobody. A policy that names none
    /// gets `defaultFallback`.
    public var fallback: [NotifyTarget] = PolicyConfig.defaultFallback
    /// After the last round, an emergency nobody acknowledged is paged again every `remind_s`.
    public var remindSeconds: Int = 300

    /// Everyone who holds any shift on the alert's grid, whether on call now or not: in a roster
    /// gap the people who know the residents are the first to ask.
    public static let defaultFallback: [NotifyTarget] = [.gridRoster]

    /// Used by grids that name `default` when the file defines no such policy: the primary at once,
    /// the backup after a minute, everyone on the grid after three, the whole ladder three times.
    public static let builtInDefault = PolicyConfig(
        id: "default", repeatCount: 2, repeatAfterSeconds: 60,
        steps: [PolicyStep(afterSeconds: 0, notify: [.gridPrimary]),
                PolicyStep(afterSeconds: 60, notify: [.gridBackup]),
                PolicyStep(afterSeconds: 180, notify: [.gridAll])],
        ackTimeoutSeconds: 0, fallback: defaultFallback, remindSeconds: 300)
}

public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// 1-based line; 0 when the error concerns the file as a whole.
    public var line: Int
    public var message: String
    public init(file: String, line: Int, message: String) { self.file = file; self.line = line; self.message = message }
    public var description: String { "\(file):\(line): \(message)" }
}
