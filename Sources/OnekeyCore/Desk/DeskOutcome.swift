/// Something the desk wants the operator to read in the journal.
public struct DeskNote: Sendable, Equatable {
    public enum Level: Sendable { case debug, info, notice, warning, error, critical }
    public var level: Level
    public var message: String
    public var alert: String?
    public var device: String?
    public var kind: EventKind?
    public var member: String?

    public init(_ level: Level, _ message: String, alert: String? = nil, device: String? = nil,
                kind: EventKind? = nil, member: String? = nil) {
        self.level = level; self.message = message; self.alert = alert; self.device = device
        self.kind = kind; self.member = member
    }
}

/// Everything one input changed. The daemon stores it in one transaction (events, alerts,
/// devices and the outbox together) before anything is published.
public struct DeskOutcome: Sendable {
    public var events: [GatewayEvent] = []
    /// Alerts in their final state after this input, each once.
    public var alerts: [Alert] = []
    public var devices: [DeviceState] = []
    /// Pages: published first, so the first person paged waits for no other message. Each page
    /// carries what the responder needs (alert id, kind, resident, location, grid, step).
    public var pageMessages: [OutboundMessage] = []
    /// Alerts' states, in order: published right after the pages (an app that subscribes to
    /// the alert on a page gets the state then, retained or live).
    public var alertMessages: [OutboundMessage] = []
    /// The other state messages (events, devices), in order: published last.
    public var messages: [OutboundMessage] = []
    public var notes: [DeskNote] = []
    /// Repeat frames folded into an earlier press.
    public var repeats = 0
    /// Frames from unenrolled addresses that were only counted (no event).
    public var unknownFramesCounted = 0
    /// Pages sent, for counters.
    public var pages = 0
    /// The retained state sent again after a (re)connect (`AlertDesk.retainedSnapshot`).
    public var isRetainedSnapshot = false
    /// For each timer firing: how late it ran after its deadline (ms, injected clock).
    public var lateness: [Int64] = []

    public init() {}

    public var changesState: Bool { !events.isEmpty || !alerts.isEmpty || !devices.isEmpty || !messages.isEmpty || !alertMessages.isEmpty || !pageMessages.isEmpty }

    /// Everything to publish, in publishing order: pages, alerts' states, events and devices.
    public var outbox: [OutboundMessage] { pageMessages + alertMessages + messages }

    mutating func record(_ a: Alert) {
        if let i = alerts.firstIndex(where: { $0.id == a.id }) { alerts[i] = a } else { alerts.append(a) }
    }

    mutating func record(_ d: DeviceState) {
        if let i = devices.firstIndex(where: { $0.id == d.id }) { devices[i] = d } else { devices.append(d) }
    }

    public mutating func merge(_ other: DeskOutcome) {
        events += other.events
        for a in other.alerts { record(a) }
        for d in other.devices { record(d) }
        alertMessages += other.alertMessages
        pageMessages += other.pageMessages
        messages += other.messages
        notes += other.notes
        repeats += other.repeats
        unknownFramesCounted += other.unknownFramesCounted
        pages += other.pages
        lateness += other.lateness
    }
}

/// Responders' actions (CONTRACT §6, §7 acks).
public enum MemberAction: String, Sendable, CaseIterable { case ack, resolve, decline }

/// Where an action came from: the broker (a responder's app) or the control socket (an operator).
public enum ActionSource: String, Sendable { case mqtt, control }

public enum ActionError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownAlert(String)
    case unknownMember(String)
    case closed(String, AlertState)
    case notAllowed(member: String, alert: String)
    case invalid(String)

    public var description: String {
        switch self {
        case .unknownAlert(let id): return "unknown alert \(id)"
        case .unknownMember(let m): return "unknown member \(m)"
        case .closed(let id, let s): return "alert \(id) is already \(s.rawValue)"
        case .notAllowed(let m, let id): return "member \(m) was not paged for alert \(id) and is not on its grid's roster"
        case .invalid(let why): return why
        }
    }
}
