import Foundation

/// A page as the second path needs it, read back from the page message in the outbox
/// (CONTRACT §7 page JSON), so an SMS can be composed for any page not yet delivered.
public struct PageSummary: Sendable, Equatable {
    public var outboxKey: String
    public var alert: String
    public var member: String
    public var reason: String
    public var kind: String
    public var resident: String
    public var location: String
    public var gridName: String
    public var raisedAt: Timestamp

    public init(outboxKey: String, alert: String, member: String, reason: String, kind: String, resident: String,
                location: String, gridName: String, raisedAt: Timestamp) {
        self.outboxKey = outboxKey; self.alert = alert; self.member = member; self.reason = reason; self.kind = kind
        self.resident = resident; self.location = location; self.gridName = gridName; self.raisedAt = raisedAt
    }

    /// nil unless `payload` is a page (it names an alert, a member and a reason).
    public init?(outboxKey: String, payload: [UInt8]) {
        guard let json = try? JSON.parse(payload), let alert = json["alert"]?.stringValue,
              let member = json["member"]?.stringValue, let reason = json["reason"]?.stringValue else { return nil }
        self.init(outboxKey: outboxKey, alert: alert, member: member, reason: reason,
                  kind: json["kind"]?.stringValue ?? "", resident: json["resident"]?.stringValue ?? "",
                  location: json["location"]?.stringValue ?? "",
                  gridName: json["grid_name"]?.stringValue ?? json["grid"]?.stringValue ?? "",
                  raisedAt: json["raised_at"]?.stringValue.flatMap { Timestamp(rfc3339: $0) } ?? Timestamp(milliseconds: 0))
    }
}

/// The SMS text of a page (CONTRACT §11): kind, resident, location, grid, raise time (HH:MM in
/// `gateway.timezone`), the alert id's last 6 characters and the three reply codes, in one
/// message of at most 70 UCS2 units, else two that each name the alert (`(1/2)#ABC123 …`).
/// The location is shortened (then the resident, then the grid) rather than need a third part.
public enum SMSPageText {
    public static let unitsPerPart = 70
    public static let replyCodes = "回1确认 2不能去 3已处理"

    public static func kindLabel(_ kind: String, reason: String) -> String {
        let label: String
        switch kind {
        case "panic": label = "紧急呼救"
        case "medical": label = "医疗求助"
        case "inactivity": label = "长时间无活动"
        case "low_battery": label = "电量低"
        case "tamper": label = "设备被拆"
        case "supervision_loss": label = "设备失联"
        case "test": label = "测试"
        default: label = "报警"
        }
        switch reason {
        case "cancelled": return label + "已取消"
        case "reminder", "escalated", "fallback", "reopened": return label + "(仍未处理)"
        case "pressed_again": return label + "(再次按下)"
        default: return label
        }
    }

    /// The last 6 characters of an alert id, upper-case: what replies and both parts name.
    public static func tag(_ alert: String) -> String { "#" + String(alert.suffix(6)).uppercased() }

    /// HH:MM of `t` in the IANA zone `timezone` (UTC when the zone is unknown).
    public static func clock(_ t: Timestamp, timezone: String) -> String {
        let zone = TimeZone(identifier: timezone) ?? TimeZone(identifier: "UTC")!
        let secs = Int64((Double(t.milliseconds) / 1000).rounded(.down))
        let local = secs + Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(secs))))
        let minuteOfDay = ((local / 60) % 1440 + 1440) % 1440
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(two(minuteOfDay / 60)):\(two(minuteOfDay % 60))"
    }

    public static func compose(_ p: PageSummary, timezone: String) -> [String] {
        let kind = kindLabel(p.kind, reason: p.reason), tag = tag(p.alert), time = clock(p.raisedAt, timezone: timezone)
        let single = "\(kind)\(tag) \(p.resident) \(p.location) \(p.gridName) \(time)发起 \(replyCodes)"
        if UCS2.units(single) <= unitsPerPart { return [single] }
        let head1 = "(1/2)\(tag) \(kind):", head2 = "(2/2)\(tag) "
        let tail2 = " \(time)发起 \(replyCodes)"
        // Part 1: kind, resident, location; the location gives way first, then the resident.
        var resident = p.resident, location = p.location
        func part1() -> String { "\(head1)\(resident) \(location)" }
        if UCS2.units(part1()) > unitsPerPart {
            let room = unitsPerPart - UCS2.units(head1) - UCS2.units(resident) - 1
            location = shorten(location, to: max(room, min(12, UCS2.units(location))))
        }
        if UCS2.units(part1()) > unitsPerPart {
            let room = unitsPerPart - UCS2.units(head1) - UCS2.units(location) - 1
            resident = shorten(resident, to: max(room, 0))
        }
        if UCS2.units(part1()) > unitsPerPart {
            location = shorten(location, to: max(0, unitsPerPart - UCS2.units(head1) - UCS2.units(resident) - 1))
        }
        let grid = shorten(p.gridName, to: unitsPerPart - UCS2.units(head2) - UCS2.units(tail2))
        return [part1(), head2 + grid + tail2]
    }

    /// `text` cut on a character boundary to at most `units` UCS2 units, ending in `…` when cut.
    public static func shorten(_ text: String, to units: Int) -> String {
        guard UCS2.units(text) > units else { return text }
        guard units > 0 else { return "" }
        var out = "", used = 0
        for c in text {
            let n = String(c).utf16.count
            if used + n > units - 1 { break }
            out.append(c); used += n
        }
        return out + "…"
    }

    /// The answer to a text that is none of the three codes.
    public static let explanation = "一键呼: 请回复数字 1确认接警 2无法前往(转下一位) 3已处理完毕, 作用于最近发给您的报警。"

    public static func confirmation(_ action: MemberAction, alert: String) -> String {
        switch action {
        case .ack: return "一键呼: 已确认接警 \(tag(alert))"
        case .decline: return "一键呼: 已转下一位 \(tag(alert))"
        case .resolve: return "一键呼: 已标记处理完毕 \(tag(alert))"
        }
    }
}
