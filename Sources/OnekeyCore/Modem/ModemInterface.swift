// What goes into and comes out of a `ModemSession`: timings, requests, events.

/// The session's timeouts and delays (milliseconds); tests shorten them.
public struct ModemTimings: Sendable, Equatable {
    public var commandMs: Int64 = 5_000
    /// `AT+CMGS=…` until `> `.
    public var promptMs: Int64 = 10_000
    /// Text sent (Ctrl-Z) until `+CMGS:`/`OK`: the network may take long.
    public var submitMs: Int64 = 60_000
    public var dialMs: Int64 = 20_000
    /// A call is hung up this long after dialling (CONTRACT §11: 30 s).
    public var hangUpAfterMs: Int64 = 30_000
    public var pollMs: Int64 = 30_000
    public var reinitMs: Int64 = 10_000
    /// After ESC (port opened, modem silent): stray answers are let pass this long before ATE0.
    public var settleMs: Int64 = 300
    /// Retries of a modem that keeps failing back off up to this.
    public var maxReinitMs: Int64 = 300_000
    /// A failed SMS is retried after 5 s, doubling, at most `retryMaxMs` (CONTRACT §11: within 30 s).
    public var retryFirstMs: Int64 = 5_000
    public var retryMaxMs: Int64 = 30_000

    public static let standard = ModemTimings()
    public init() {}
}

/// An SMS to send: `id` is the outbox key it answers for (events report it back).
public struct OutgoingSMS: Sendable, Equatable {
    public var id: String
    /// E.164 (`+8613800138000`).
    public var number: String
    /// One to two texts, each at most 70 UCS2 units.
    public var parts: [String]
    public init(id: String, number: String, parts: [String]) { self.id = id; self.number = number; self.parts = parts }
}

public struct CallRequest: Sendable, Equatable {
    public var id: String
    public var number: String
    public init(id: String, number: String) { self.id = id; self.number = number }
    /// `ATD` takes plain digits (and a leading `+`); anything else is dropped.
    public var dialString: String { String(number.filter { $0 == "+" || ($0.isASCII && $0.isNumber) }) }
}

public enum ModemEvent: Sendable, Equatable {
    /// Every part confirmed by `+CMGS` (message references, -1 when the modem gave none).
    case smsSent(id: String, references: [Int])
    /// Not sent this time; it stays queued and is tried again after `retryInMs`.
    case smsFailed(id: String, error: String, retryInMs: Int64)
    /// An incoming SMS, read and deleted from the modem: the sender's number and the text.
    case received(sender: String, text: String)
    /// The call is ringing the member's phone.
    case callPlaced(id: String)
    case callEnded(id: String, result: String)
    /// Dialling failed `maxCallAttempts` times.
    case callFailed(id: String, error: String)
    case stateChanged(ModemState)
    case note(DeskNote.Level, String)
}

/// What one input produced: bytes for the port (in order) and events for the gateway.
public struct ModemStep: Sendable, Equatable {
    public var writes: [UInt8] = []
    public var events: [ModemEvent] = []
    public init() {}
    public mutating func merge(_ o: ModemStep) { writes += o.writes; events += o.events }
}
