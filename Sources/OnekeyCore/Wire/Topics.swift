/// The MQTT topics of CONTRACT §7. P = topic_prefix, G = gateway id.
public struct Topics: Sendable, Equatable {
    public let prefix: String
    public let gateway: String

    public init(prefix: String, gateway: String) { self.prefix = prefix; self.gateway = gateway }

    public var status: String { "\(prefix)/gateways/\(gateway)/status" }
    public var events: String { "\(prefix)/gateways/\(gateway)/events" }
    public func alert(_ id: String) -> String { "\(prefix)/gateways/\(gateway)/alerts/\(id)" }
    public func device(_ id: String) -> String { "\(prefix)/gateways/\(gateway)/devices/\(id)" }
    public func pages(_ member: String) -> String { "\(prefix)/members/\(member)/pages" }
    /// Subscription for responders' actions.
    public var acksFilter: String { "\(prefix)/members/+/acks" }

    /// The member of a `P/members/M/acks` topic, nil for any other topic.
    public func ackMember(topic: String) -> String? {
        let head = "\(prefix)/members/"
        guard topic.hasPrefix(head), topic.hasSuffix("/acks") else { return nil }
        let m = topic.dropFirst(head.count).dropLast(5)
        return m.isEmpty || m.contains("/") ? nil : String(m)
    }
}

/// JSON bodies of CONTRACT §7. Each payload lists its fields once (`write…`), into bytes for a
/// message (`…Bytes`, on the path of a press) or into a `JSON` value for a control answer.
public enum Payloads {
    static func writeEvent<S: JSONFieldSink>(_ e: GatewayEvent, gateway: String, key: String, into s: inout S) {
        s.string("id", e.id); s.string("gateway", gateway); s.string("device", e.device)
        s.string("driver", e.driver.rawValue); s.string("address", e.address); s.string("kind", e.kind.rawValue)
        s.string("code", e.code); s.time("received_at", e.receivedAt); s.string("raw", e.raw.hex)
        s.string("alert", e.alertID); s.bool("test", e.test); s.string("msg_id", key)
        if let n = e.count { s.int("count", n) }
    }

    static func writeAlert<S: JSONFieldSink>(_ a: Alert, gateway: String, key: String?, into s: inout S) {
        s.string("id", a.id); s.string("gateway", gateway); s.string("device", a.device)
        s.string("kind", a.kind.rawValue); s.string("state", a.state.rawValue); s.string("grid", a.grid)
        s.string("resident", a.resident); s.string("location", a.location)
        s.time("raised_at", a.raisedAt); s.time("last_press_at", a.lastPressAt)
        s.int("press_count", a.pressCount); s.int("step", a.step)
        s.strings("paged", a.paged); s.string("acked_by", a.ackedBy)
        s.time("acked_at", a.ackedAt); s.time("resolved_at", a.resolvedAt)
        s.string("resolved_by", a.resolvedBy); s.string("note", a.note); s.bool("test", a.test)
        s.time("next_step_at", a.nextStepAt); s.bool("unattended", a.unattended)
        if let key { s.string("msg_id", key) }
    }

    static func writePage<S: JSONFieldSink>(_ a: Alert, member: String, reason: PageReason, gridName: String, at: Timestamp, key: String, into s: inout S) {
        s.string("alert", a.id); s.string("member", member); s.string("reason", reason.rawValue)
        s.string("kind", a.kind.rawValue); s.string("state", a.state.rawValue); s.string("device", a.device)
        s.string("resident", a.resident); s.string("location", a.location); s.string("grid", a.grid)
        s.string("grid_name", gridName); s.int("step", a.step); s.int("press_count", a.pressCount)
        s.time("raised_at", a.raisedAt); s.time("paged_at", at); s.bool("test", a.test)
        s.string("msg_id", key)
    }

    static func writeDevice<S: JSONFieldSink>(_ d: DeviceConfig, state: DeviceState, gateway: String, key: String, into s: inout S) {
        s.string("id", d.id); s.string("gateway", gateway); s.string("driver", d.driver.rawValue)
        s.string("address", d.address); s.string("grid", d.grid); s.bool("online", state.online)
        s.time("last_seen", state.lastSeen); s.string("battery", state.batteryLow ? "low" : "ok")
        s.string("msg_id", key)
    }

    public static func event(_ e: GatewayEvent, gateway: String, key: String) -> JSON {
        var t = JSONObjectTree(); writeEvent(e, gateway: gateway, key: key, into: &t); return t.json
    }

    public static func eventBytes(_ e: GatewayEvent, gateway: String, key: String) -> [UInt8] {
        var w = JSONObjectWriter(capacity: 384); writeEvent(e, gateway: gateway, key: key, into: &w); return w.finish()
    }

    public static func alert(_ a: Alert, gateway: String, key: String?) -> JSON {
        var t = JSONObjectTree(); writeAlert(a, gateway: gateway, key: key, into: &t); return t.json
    }

    public static func alertBytes(_ a: Alert, gateway: String, key: String?) -> [UInt8] {
        var w = JSONObjectWriter(capacity: 768); writeAlert(a, gateway: gateway, key: key, into: &w); return w.finish()
    }

    public static func page(_ a: Alert, member: String, reason: PageReason, gridName: String, at: Timestamp, key: String) -> JSON {
        var t = JSONObjectTree(); writePage(a, member: member, reason: reason, gridName: gridName, at: at, key: key, into: &t); return t.json
    }

    public static func pageBytes(_ a: Alert, member: String, reason: PageReason, gridName: String, at: Timestamp, key: String) -> [UInt8] {
        var w = JSONObjectWriter(capacity: 640)
        writePage(a, member: member, reason: reason, gridName: gridName, at: at, key: key, into: &w)
        return w.finish()
    }

    public static func device(_ d: DeviceConfig, state: DeviceState, gateway: String, key: String) -> JSON {
        var t = JSONObjectTree(); writeDevice(d, state: state, gateway: gateway, key: key, into: &t); return t.json
    }

    public static func deviceBytes(_ d: DeviceConfig, state: DeviceState, gateway: String, key: String) -> [UInt8] {
        var w = JSONObjectWriter(capacity: 256); writeDevice(d, state: state, gateway: gateway, key: key, into: &w); return w.finish()
    }

    /// The answer fields of `{"cmd":"unknown"}`: addresses heard but not enrolled, most recent first.
    public static func unknown(_ list: [UnknownAddress], evicted: Int) -> [(String, JSON)] {
        [("unknown", .array(list.map { u in
            .object([
                ("driver", .string(u.driver.rawValue)), ("address", .string(u.address)),
                ("codes", .array(u.codes.sorted().map { .string($0) })), ("frames", .int(Int64(u.frames))),
                ("first_heard", .string(u.firstHeard.rfc3339)), ("last_heard", .string(u.lastHeard.rfc3339)),
            ])
        })), ("evicted", .int(Int64(evicted)))]
    }

    public static func status(online: Bool, version: String, since: Timestamp) -> JSON {
        online ? .object([("state", .string("online")), ("version", .string(version)), ("since", .string(since.rfc3339))])
               : .object([("state", .string("offline")), ("version", .string(version))])
    }
}

/// What the gateway knows of an enrolled device (published retained on `devices/DEVICE`).
public struct DeviceState: Sendable, Equatable {
    public var id: String
    public var online: Bool
    public var lastSeen: Timestamp?
    public var batteryLow: Bool
    public init(id: String, online: Bool = true, lastSeen: Timestamp? = nil, batteryLow: Bool = false) {
        self.id = id; self.online = online; self.lastSeen = lastSeen; self.batteryLow = batteryLow
    }
}
