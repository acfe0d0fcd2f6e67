/// The second path's decisions (CONTRACT §11), pure: which undelivered pages go by SMS, which
/// members are rung, and what an incoming SMS means.
///
/// Persisted by the gateway (so a restart neither resends what the modem confirmed nor loses
/// what it had not): the *decided* keys — `smsKey` (alert|member|reason) of every SMS queued and
/// `callKey` (alert|member) of every call queued — written in the same transaction as the SMS
/// itself (id, number, parts) into the outbox; an SMS row is deleted when the modem confirms it
/// (`ModemEvent.smsSent`), and queued again at start while it is still there. `restore` puts the
/// decided keys back. `lastPaged` is rebuilt from the store's pages (or recorded again as pages go).
public struct SecondPath: Sendable {
    public let settings: ModemSettings
    public let timezone: String
    private var phones: [String: String] = [:]
    public private(set) var smsDecided: Set<String> = []
    public private(set) var callsDecided: Set<String> = []
    /// The most recent alert paged to each member, by any channel.
    public private(set) var lastPaged: [String: (alert: String, at: Timestamp)] = [:]
    private var warnedNoPhone: Set<String> = []
    private var lastExplained: [String: Timestamp] = [:]
    /// A member gets at most one explanatory reply per this window (a chatty phone costs money).
    public static let explainEveryMs: Int64 = 600_000
    /// SMS from unknown numbers (spam, a hostile flood) are logged at most this often per window.
    public static let unknownNotesPerWindow = 10
    private var unknownWindowStart: Timestamp?
    private var unknownLogged = 0
    private var unknownSuppressed = 0

    public init(settings: ModemSettings, members: [MemberConfig], timezone: String) {
        self.settings = settings
        self.timezone = timezone
        for m in members { if let p = m.phone { phones[m.id] = p } }
    }

    public static func smsKey(alert: String, member: String, reason: String) -> String { "\(alert)|\(member)|\(reason)" }
    public static func callKey(alert: String, member: String) -> String { "\(alert)|\(member)" }

    /// Puts back what was decided before a restart.
    public mutating func restore(smsKeys: some Sequence<String>, callKeys: some Sequence<String>) {
        smsDecided.formUnion(smsKeys)
        callsDecided.formUnion(callKeys)
    }

    /// Every page the desk produces (MQTT or not) goes through here: replies act on the latest.
    public mutating func notePaged(member: String, alert: String, at t: Timestamp) {
        if let last = lastPaged[member], last.at > t { return }
        lastPaged[member] = (alert, t)
    }

    /// A closed alert's keys are no longer needed.
    public mutating func forget(alert: String) {
        smsDecided = smsDecided.filter { !$0.hasPrefix(alert + "|") }
        callsDecided = callsDecided.filter { !$0.hasPrefix(alert + "|") }
    }

    /// - Parameters:
    ///   - brokerUnreachableForMs: how long the broker has been unreachable (monotonic), nil when connected.
    ///   - undelivered: the page messages still in the outbox (not acknowledged by the broker), oldest first.
    ///   - openAlerts: the desk's open alerts.
    public mutating func decide(now: Timestamp, brokerUnreachableForMs: Int64?, undelivered: [PageSummary],
                                openAlerts: [Alert]) -> SecondPathDecision {
        var out = SecondPathDecision()
        guard let down = brokerUnreachableForMs, down >= Int64(settings.afterSeconds) * 1000 else { return out }
        for p in undelivered {
            let key = Self.smsKey(alert: p.alert, member: p.member, reason: p.reason)
            guard !smsDecided.contains(key) else { continue }
            guard let phone = phones[p.member] else {
                if warnedNoPhone.insert(p.member).inserted {
                    out.notes.append(DeskNote(.warning, "broker unreachable and member \(p.member) has no phone: page not sent by SMS", alert: p.alert, member: p.member))
                }
                continue
            }
            smsDecided.insert(key)
            let message = OutgoingSMS(id: "sms:" + p.outboxKey, number: phone, parts: SMSPageText.compose(p, timezone: timezone))
            out.sms.append(PlannedSMS(key: key, alert: p.alert, member: p.member, message: message))
            out.notes.append(DeskNote(.notice, "broker unreachable for \(down / 1000) s: page by SMS to \(phone)", alert: p.alert, member: p.member))
        }
        let callAfter = Int64(settings.callAfterSeconds) * 1000
        for a in openAlerts where a.state == .open && a.kind.isEmergency && now.milliseconds - a.raisedAt.milliseconds >= callAfter {
            for m in a.paged {
                let key = Self.callKey(alert: a.id, member: m)
                guard !callsDecided.contains(key), let phone = phones[m] else { continue }
                callsDecided.insert(key)
                out.calls.append(PlannedCall(key: key, alert: a.id, member: m, request: CallRequest(id: "call:" + key, number: phone)))
                out.notes.append(DeskNote(.warning, "unacknowledged for \(settings.callAfterSeconds) s, broker unreachable: ringing \(phone)", alert: a.id, member: m))
            }
        }
        return out
    }

    /// An incoming SMS → what to do.
    public mutating func reply(from sender: String, text: String, at t: Timestamp) -> SMSReply {
        guard let member = member(phone: sender) else { return .ignored(unknownSender(sender, text, at: t)) }
        let number = phones[member]!
        let action: MemberAction?
        switch Self.code(text) {
        case "1": action = .ack
        case "2": action = .decline
        case "3": action = .resolve
        default: action = nil
        }
        if let action, let alert = lastPaged[member]?.alert {
            return .act(action, member: member, alert: alert, replyTo: number)
        }
        if let last = lastExplained[member], t.milliseconds - last.milliseconds < Self.explainEveryMs {
            return .ignored(DeskNote(.info, "SMS from \(member) is not a reply code; explained recently, not again", member: member))
        }
        lastExplained[member] = t
        let text = action == nil ? SMSPageText.explanation : "一键呼: 最近没有发给您的报警。" + SMSPageText.explanation
        return .explain(OutgoingSMS(id: "reply:\(member):\(t.milliseconds)", number: number, parts: [text]), member: member)
    }

    /// A note for the first `unknownNotesPerWindow` unknown senders of a window, then nil (counted,
    /// and the count is told in the next window's first note): memory and log volume stay bounded.
    private mutating func unknownSender(_ sender: String, _ text: String, at t: Timestamp) -> DeskNote? {
        if let start = unknownWindowStart, t.milliseconds - start.milliseconds < Self.explainEveryMs {
            guard unknownLogged < Self.unknownNotesPerWindow else { unknownSuppressed += 1; return nil }
        } else {
            unknownWindowStart = t
            unknownLogged = 0
        }
        unknownLogged += 1
        let more = unknownSuppressed > 0 ? "; \(unknownSuppressed) more from unknown numbers were not logged" : ""
        unknownSuppressed = 0
        return DeskNote(.notice, "SMS from unknown number \(sender.prefix(32)) ignored (\(text.utf16.count) characters)\(more)")
    }

    /// The SMS answering an applied (or refused) reply code.
    public static func answer(to action: MemberAction, alert: String, member: String, number: String,
                              error: ActionError?, at t: Timestamp) -> OutgoingSMS {
        let text = error.map { "一键呼: 未能执行 \(SMSPageText.tag(alert)): \(Self.reason($0))" }
            ?? SMSPageText.confirmation(action, alert: alert)
        return OutgoingSMS(id: "reply:\(member):\(t.milliseconds)", number: number, parts: [SMSPageText.shorten(text, to: 70)])
    }

    static func reason(_ e: ActionError) -> String {
        switch e {
        case .closed: return "报警已关闭"
        case .notAllowed: return "您不在此报警的名单上"
        case .unknownAlert: return "报警不存在"
        case .unknownMember: return "未登记的成员"
        case .invalid: return "报警已被他人确认"
        }
    }

    /// The member whose phone sent this: the same E.164 number, or a national form of it
    /// (`13800138000` for `+8613800138000`) — at least 7 trailing digits the same.
    public func member(phone sender: String) -> String? {
        let digits = String(sender.filter { $0.isASCII && $0.isNumber })
        guard digits.count >= 7 else { return nil }
        if let exact = phones.first(where: { $0.value == sender }) { return exact.key }
        let matches = phones.filter {
            let mine = String($0.value.filter { $0.isASCII && $0.isNumber })
            return mine == digits || (!sender.hasPrefix("+") && mine.hasSuffix(digits))
        }
        return matches.count == 1 ? matches.first!.key : nil
    }

    /// The reply code in a text: trimmed, full-width digits folded (`１` → `1`).
    static func code(_ text: String) -> String {
        var s = ""
        for u in text.unicodeScalars {
            if (0xFF10...0xFF19).contains(u.value) { s.unicodeScalars.append(Unicode.Scalar(u.value - 0xFF10 + 0x30)!) }
            else if !u.properties.isWhitespace && u.value != 0x3002 && u.value != 0x2E { s.unicodeScalars.append(u) }
        }
        return s
    }
}

public struct PlannedSMS: Sendable, Equatable {
    /// `SecondPath.smsKey`: persist it with the message.
    public var key: String
    public var alert: String
    public var member: String
    public var message: OutgoingSMS
}

public struct PlannedCall: Sendable, Equatable {
    public var key: String
    public var alert: String
    public var member: String
    public var request: CallRequest
}

public struct SecondPathDecision: Sendable {
    public var sms: [PlannedSMS] = []
    public var calls: [PlannedCall] = []
    public var notes: [DeskNote] = []
    public init() {}
}

public enum SMSReply: Sendable, Equatable {
    /// Apply with `desk.act(action, member:, alert:, note: nil, source: .mqtt, at:)` (the same
    /// rules as an MQTT ack), then send `SecondPath.answer(…)` to `replyTo`.
    case act(MemberAction, member: String, alert: String, replyTo: String)
    /// Not a reply code: send this explanation.
    case explain(OutgoingSMS, member: String)
    /// Unknown number (or an explanation sent recently): log the note if any (rate-limited), change nothing.
    case ignored(DeskNote?)
}
