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

/// JSON bodies of CONTRACT §7.
public enum Payloads {
    public static func event(_ e: GatewayEvent, gateway: String, key: String) -> JSON {
        var fields: [(String, JSON)] = [
            ("id", .string(e.id)), ("gateway", .string(gateway)), ("device", .optional(e.device)),
            ("driver", .string(e.driver.rawValue)), ("address", .string(e.address)), ("kind", .string(e.kind.rawValue)),
            ("code", .string(e.code)), ("received_at", .string(e.receivedAt.rfc3339)), ("raw", .string(e.raw.hex)),
            ("alert", .optional(e.alertID)), ("test", .bool(e.test)), ("msg_id", .string(key)),
        ]
        if let n = e.count { fields.append(("count", .int(Int64(n)))) }
        return .object(fields)
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

    public static func alert(_ a: Alert, gateway: String, key: String?) -> JSON {
        var fields: [(String, JSON)] = [
            ("id", .string(a.id)), ("gateway", .string(gateway)), ("device", .string(a.device)),
            ("kind", .string(a.kind.rawValue)), ("state", .string(a.state.rawValue)), ("grid", .string(a.grid)),
            ("resident", .string(a.resident)), ("location", .string(a.location)),
            ("raised_at", .string(a.raisedAt.rfc3339)), ("last_press_at", .string(a.lastPressAt.rfc3339)),
            ("press_count", .int(Int64(a.pressCount))), ("step", .int(Int64(a.step))),
            ("paged", .array(a.paged.map { .string($0) })), ("acked_by", .optional(a.ackedBy)),
            ("acked_at", .optional(a.ackedAt)), ("resolved_at", .optional(a.resolvedAt)),
            ("resolved_by", .optional(a.resolvedBy)), ("note", .optional(a.note)), ("test", .bool(a.test)),
            ("next_step_at", .optional(a.nextStepAt)), ("unattended", .bool(a.unattended)),
        ]
        if let key { fields.append(("msg_id", .string(key))) }
        return .object(fields)
    }

    public static func page(_ a: Alert, member: String, reason: PageReason, gridName: String, at: Timestamp, key: String) -> JSON {
        .object([
            ("alert", .string(a.id)), ("member", .string(member)), ("reason", .string(reason.rawValue)),
            ("kind", .string(a.kind.rawValue)), ("state", .string(a.state.rawValue)), ("device", .string(a.device)),
            ("resident", .string(a.resident)), ("location", .string(a.location)), ("grid", .string(a.grid)),
            ("grid_name", .string(gridName)), ("step", .int(Int64(a.step))), ("press_count", .int(Int64(a.pressCount))),
            ("raised_at", .string(a.raisedAt.rfc3339)), ("paged_at", .string(at.rfc3339)), ("test", .bool(a.test)),
            ("msg_id", .string(key)),
        ])
    }

    public static func device(_ d: DeviceConfig, state: DeviceState, gateway: String, key: String) -> JSON {
        .object([
            ("id", .string(d.id)), ("gateway", .string(gateway)), ("driver", .string(d.driver.rawValue)),
            ("address", .string(d.address)), ("grid", .string(d.grid)), ("online", .bool(state.online)),
            ("last_seen", .optional(state.lastSeen)), ("battery", .string(state.batteryLow ? "low" : "ok")),
            ("msg_id", .string(key)),
        ])
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
