/// The normalized kinds of CONTRACT §5. Every driver maps its codes onto these.
public enum EventKind: String, Sendable, CaseIterable, Codable {
    case panic, medical, cancel, restore
    case lowBattery = "low_battery"
    case tamper, test
    case supervisionLoss = "supervision_loss"
    case inactivity, unknown
    case unknownDevice = "unknown_device"

    /// Emergencies raise an alert and climb the escalation ladder.
    public var isEmergency: Bool { self == .panic || self == .medical || self == .inactivity }
    /// Troubles page the grid's primary once and close when the device is heard normally again.
    public var isTrouble: Bool { self == .lowBattery || self == .tamper || self == .supervisionLoss }
}

/// The drivers of CONTRACT §4.
public enum DriverKind: String, Sendable, CaseIterable, Codable {
    case ev1527, surgard, evdev

    public var defaultBaud: Int { 9600 }
    public var isSerial: Bool { self != .evdev }
}

/// Alert states of CONTRACT §5: open → acked → resolved; open/acked → cancelled.
public enum AlertState: String, Sendable, Codable {
    case open, acked, resolved, cancelled

    public var isClosed: Bool { self == .resolved || self == .cancelled }
}
