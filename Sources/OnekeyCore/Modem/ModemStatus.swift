/// Where the modem session stands.
public enum ModemState: String, Sendable, Equatable {
    /// The port is not open.
    case closed
    /// Running the init sequence.
    case initialising
    /// Initialised; SMS and calls go out while registered.
    case ready
    /// The SIM is missing, locked (PIN/PUK) or failing; `AT+CPIN?` is polled until it is ready.
    case simProblem = "sim_problem"
    /// The modem stopped answering or refused the init sequence; it is tried again.
    case unresponsive
}

/// `onekeyctl modem` (CONTRACT §2, §11): `{"ok":true,"modem":{…}}`.
public struct ModemStatus: Sendable, Equatable {
    public var configured = true
    public var path = ""
    public var state = ModemState.closed
    /// `+CPIN:` value (`READY`, `SIM PIN`, …) or the `+CME ERROR` text (`SIM not inserted`).
    public var sim: String? = nil
    /// 3GPP `<stat>` of `+CREG`.
    public var registrationCode: Int? = nil
    /// `+CSQ` rssi (0…31, 99 unknown).
    public var rssi: Int? = nil
    public var smsWaiting = 0
    public var smsSent = 0
    public var smsFailed = 0
    public var calls = 0
    public var lastError: String? = nil

    public init(configured: Bool = true, path: String = "") { self.configured = configured; self.path = path }

    public var registered: Bool { registrationCode == 1 || registrationCode == 5 }

    public var registration: String {
        switch registrationCode {
        case 0: return "not_registered"
        case 1: return "home"
        case 2: return "searching"
        case 3: return "denied"
        case 5: return "roaming"
        case nil: return "unknown"
        default: return "unknown"
        }
    }

    /// 27.007 `+CSQ` rssi → dBm: 0 → -113, 1 → -111, 2…30 → -109…-53, 31 → -51 or better; 99 unknown.
    public var signalDBm: Int? {
        guard let r = rssi, (0...31).contains(r) else { return nil }
        return -113 + 2 * r
    }

    public var fields: JSON {
        .object([
            ("configured", .bool(configured)), ("path", .string(path)), ("state", .string(state.rawValue)),
            ("sim", .optional(sim)), ("registration", .string(registration)),
            ("signal_dbm", signalDBm.map { .int(Int64($0)) } ?? .null),
            ("sms_waiting", .int(Int64(smsWaiting))), ("sms_sent", .int(Int64(smsSent))),
            ("sms_failed", .int(Int64(smsFailed))), ("calls", .int(Int64(calls))), ("last_error", .optional(lastError)),
        ])
    }

    /// The control socket's answer to `{"cmd":"modem"}`.
    public var json: JSON { .object([("ok", .bool(true)), ("modem", fields)]) }

    /// The answer when no `[modem]` is configured.
    public static var notConfigured: ModemStatus { ModemStatus(configured: false) }
}
