/// A frame as a driver decoded it: who spoke and what code, before dedup and enrolment lookup.
public struct DecodedFrame: Sendable, Equatable {
    public var driver: DriverKind
    /// Device address as written in the config (`A1B2C` for ev1527, account for surgard).
    public var address: String
    /// The driver's code: key nibble in hex for ev1527, Contact ID event code for surgard.
    public var code: String
    /// A kind the driver already knows (surgard maps codes itself); nil when the device's `codes` decide.
    public var kind: EventKind?
    /// The frame's bytes as received.
    public var raw: [UInt8]

    public init(driver: DriverKind, address: String, code: String, kind: EventKind? = nil, raw: [UInt8]) {
        self.driver = driver
        self.address = address
        self.code = code
        self.kind = kind
        self.raw = raw
    }
}

/// A normalized event (CONTRACT §5, §7 event JSON).
public struct GatewayEvent: Sendable, Equatable {
    public var id: String
    public var device: String?
    public var driver: DriverKind
    public var address: String
    public var kind: EventKind
    public var code: String
    public var receivedAt: Timestamp
    public var raw: [UInt8]
    /// The alert this event raised, joined, or closed.
    public var alertID: String?
    /// True for presses sent through the path by `onekeyctl test-alert`.
    public var test: Bool
    /// For `unknown_device`: the frames heard from the address since its previous report.
    public var count: Int?

    public init(id: String, device: String?, driver: DriverKind, address: String, kind: EventKind, code: String,
                receivedAt: Timestamp, raw: [UInt8], alertID: String? = nil, test: Bool = false, count: Int? = nil) {
        self.id = id; self.device = device; self.driver = driver; self.address = address
        self.kind = kind; self.code = code; self.receivedAt = receivedAt; self.raw = raw
        self.alertID = alertID; self.test = test; self.count = count
    }
}

/// An alert: one emergency or trouble of one device, from raise to close (CONTRACT §5, §7).
public struct Alert: Sendable, Equatable {
    public var id: String
    public var device: String
    public var kind: EventKind
    public var state: AlertState
    public var grid: String
    public var resident: String
    public var location: String
    public var raisedAt: Timestamp
    public var lastPressAt: Timestamp
    public var pressCount: Int
    /// Index of the last escalation step fired (0 = first step), counted across rounds.
    public var step: Int
    /// Members paged so far, in the order they were first paged.
    public var paged: [String]
    public var ackedBy: String?
    public var ackedAt: Timestamp?
    public var resolvedAt: Timestamp?
    public var resolvedBy: String?
    public var note: String?
    public var test: Bool
    /// When the next escalation step is due (nil: the ladder is finished or stopped).
    public var nextStepAt: Timestamp?
    /// True for an emergency for which nobody at all could be paged (CONTRACT §6).
    public var unattended: Bool

    public init(id: String, device: String, kind: EventKind, state: AlertState = .open, grid: String,
                resident: String, location: String, raisedAt: Timestamp, lastPressAt: Timestamp? = nil,
                pressCount: Int = 1, step: Int = 0, paged: [String] = [], ackedBy: String? = nil,
                ackedAt: Timestamp? = nil, resolvedAt: Timestamp? = nil, resolvedBy: String? = nil,
                note: String? = nil, test: Bool = false, nextStepAt: Timestamp? = nil, unattended: Bool = false) {
        self.unattended = unattended
        self.id = id; self.device = device; self.kind = kind; self.state = state; self.grid = grid
        self.resident = resident; self.location = location; self.raisedAt = raisedAt
        self.lastPressAt = lastPressAt ?? raisedAt; self.pressCount = pressCount; self.step = step
        self.paged = paged; self.ackedBy = ackedBy; self.ackedAt = ackedAt; self.resolvedAt = resolvedAt
        self.resolvedBy = resolvedBy; self.note = note; self.test = test; self.nextStepAt = nextStepAt
    }

    public var isTrouble: Bool { kind.isTrouble }
}

/// Why a member is paged (CONTRACT §7 pages).
public enum PageReason: String, Sendable {
    case raised, escalated
    case pressedAgain = "pressed_again"
    case cancelled
    case reopened
    /// A step found nobody on shift; the policy's fallback is paged instead.
    case fallback
    /// After the last round, nobody has acknowledged: everyone paged so far is paged again.
    case reminder
}

/// A message for the broker. Every one is stored in the outbox before it is attempted.
public struct OutboundMessage: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var retain: Bool
    /// Per-message idempotence key, also inside the JSON payload as `msg_id`.
    public var key: String

    public init(topic: String, payload: [UInt8], retain: Bool, key: String) {
        self.topic = topic; self.payload = payload; self.retain = retain; self.key = key
    }
}
