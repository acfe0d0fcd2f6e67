import Foundation
import Glibc
import OnekeyCore

/// Why a control request failed; `code` tells onekeyctl which exit status to use.
public struct ControlError: Error, Sendable {
    public enum Code: String, Sendable {
        case usage      // 64: malformed request
        case notFound = "not_found"  // 65: unknown alert, device or member
        case badData = "bad_data"    // 65: refused by the desk (already acked, not allowed, …)
        case config     // 78: reload with a bad file
        case denied     // 77: peer may not mutate
        case internalError = "internal"  // 70
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }
}

/// One control command: its name, whether it changes state (and so needs a trusted peer), and what it does.
struct ControlCommand: Sendable {
    let name: String
    let mutates: Bool
    let run: @Sendable (Gateway, JSON) throws(ControlError) -> [(String, JSON)]
}

extension Gateway {
    /// The table of control commands (CONTRACT §2, §8).
    static let controlCommands: [ControlCommand] = [
        ControlCommand(name: "status", mutates: false) { g, _ in g.statusFields() },
        ControlCommand(name: "devices", mutates: false) { g, _ in [("devices", .array(g.deviceList()))] },
        ControlCommand(name: "alerts", mutates: false) { g, req throws(ControlError) in
            let all = req["all"]?.boolValue ?? false
            let alerts: [Alert]
            do { alerts = try g.store.alerts(includeClosed: all) } catch { throw ControlError(.internalError, "\(error)") }
            return [("alerts", .array(alerts.map { Payloads.alert($0, gateway: g.config.gateway.id, key: nil) }))]
        },
        ControlCommand(name: "alert", mutates: false) { g, req throws(ControlError) in
            let id = try req.requiredString("id")
            let found: Alert?
            let events: [GatewayEvent]
            do { found = try g.store.alert(id: id); events = try g.store.events(alert: id) } catch { throw ControlError(.internalError, "\(error)") }
            guard let alert = found else { throw ControlError(.notFound, "unknown alert \(id)") }
            let gw = g.config.gateway.id
            return [("alert", Payloads.alert(alert, gateway: gw, key: nil)),
                    ("events", .array(events.map { Payloads.event($0, gateway: gw, key: $0.id) }))]
        },
        ControlCommand(name: "ack", mutates: true) { g, req throws(ControlError) in try g.controlAction(.ack, req) },
        ControlCommand(name: "resolve", mutates: true) { g, req throws(ControlError) in try g.controlAction(.resolve, req) },
        ControlCommand(name: "decline", mutates: true) { g, req throws(ControlError) in try g.controlAction(.decline, req) },
        ControlCommand(name: "oncall", mutates: false) { g, req throws(ControlError) in try g.onCall(req) },
        ControlCommand(name: "roster-gaps", mutates: false) { g, req throws(ControlError) in try g.rosterGaps(req) },
        ControlCommand(name: "test-alert", mutates: true) { g, req throws(ControlError) in
            let device = try req.requiredString("device")
            guard let outcome = g.desk.testAlert(device: device, at: g.clock.now()) else {
                throw ControlError(.notFound, "unknown device \(device)")
            }
            g.apply(outcome)
            return [("alert", .optional(outcome.events.first?.alertID))]
        },
        ControlCommand(name: "reload", mutates: true) { g, _ throws(ControlError) in
            do { try g.reload() } catch { throw ControlError(.config, "\(error)") }
            return [("config", .string(g.config.path))]
        },
        ControlCommand(name: "unknown", mutates: false) { g, _ in Payloads.unknown(g.desk.unknownAddresses, evicted: g.desk.unknownEvicted) },
        ControlCommand(name: "outbox", mutates: false) { g, _ throws(ControlError) in
            let s: (count: Int, oldest: Timestamp?, topics: [(topic: String, count: Int, since: Timestamp)])
            do { s = try g.store.outboxSummary() } catch { throw ControlError(.internalError, "\(error)") }
            return [("count", .int(Int64(s.count))), ("oldest", .optional(s.oldest)), ("in_flight", .int(Int64(g.outboxInFlight))),
                    ("connected", .bool(g.connected)),
                    ("topics", .array(s.topics.map { .object([("topic", .string($0.topic)), ("count", .int(Int64($0.count))), ("since", .string($0.since.rfc3339))]) }))]
        },
    ]

    /// Answers one request line. Never throws: every failure is an `{"ok":false,…}` response.
    public func control(_ line: [UInt8], peerUID: uid_t, peerGID: gid_t) -> JSON {
        dispatchPrecondition(condition: .onQueue(queue))
        func failure(_ e: ControlError) -> JSON {
            .object([("ok", .bool(false)), ("error", .string(e.message)), ("code", .string(e.code.rawValue))])
        }
        let request: JSON
        do { request = try JSON.parse(line) } catch {
            return failure(ControlError(.usage, "malformed request: \(error)"))
        }
        guard case .object = request, let name = request["cmd"]?.stringValue else {
            return failure(ControlError(.usage, "request must be an object with a \"cmd\" string"))
        }
        guard let command = Self.controlCommands.first(where: { $0.name == name }) else {
            return failure(ControlError(.usage, "unknown command \"\(name)\" (known: \(Self.controlCommands.map(\.name).joined(separator: ", ")))"))
        }
        if command.mutates && !(peerUID == 0 || peerUID == getuid() || peerGID == getgid()) {
            logger.warning("refused \(name) from uid \(peerUID): not root, nor the daemon's user or group")
            return failure(ControlError(.denied, "\(name) needs root or the onekeyd user or group"))
        }
        do {
            return .object([("ok", .bool(true))] + (try command.run(self, request)))
        } catch {
            return failure(error)
        }
    }

    func controlAction(_ action: MemberAction, _ req: JSON) throws(ControlError) -> [(String, JSON)] {
        let id = try req.requiredString("id")
        let member = try req.requiredString("member")
        do {
            let outcome = try desk.act(action, member: member, alert: id, note: req["note"]?.stringValue, source: .control, at: clock.now())
            apply(outcome)
            let alert = outcome.alerts.first { $0.id == id }
            return [("alert", alert.map { Payloads.alert($0, gateway: config.gateway.id, key: nil) } ?? .null)]
        } catch {
            switch error {
            case .unknownAlert, .unknownMember: throw ControlError(.notFound, "\(error)")
            default: throw ControlError(.badData, "\(error)")
            }
        }
    }

    func statusFields() -> [(String, JSON)] {
        let now = clock.now().wall
        return [
            ("gateway", .string(config.gateway.id)), ("version", .string(OnekeyVersion.string)),
            ("since", .string(startedAt.rfc3339)), ("now", .string(now.rfc3339)), ("config", .string(config.path)),
            ("summary", .string(summary())),
            ("mqtt", .object([("connected", .bool(connected)), ("host", .string(config.mqtt.host)), ("port", .int(Int64(config.mqtt.port))),
                              ("tls", .bool(config.mqtt.tls)), ("last_error", .optional(lastLinkErrorText))])),
            ("open_alerts", .int(Int64(desk.openAlerts.count))),
            ("outbox", .object([("count", .int(Int64(outboxDepth))), ("in_flight", .int(Int64(outboxInFlight)))])),
            ("ports", .array(ports.values.sorted { $0.config.path < $1.config.path }.map { $0.statusJSON() })),
            ("counters", .object([("frames", .int(Int64(counters.frames))), ("garbage_bytes", .int(Int64(counters.garbageBytes))),
                                  ("repeat_frames", .int(Int64(counters.repeats))), ("pages", .int(Int64(counters.pages))),
                                  ("published", .int(Int64(counters.published))), ("rejected_actions", .int(Int64(counters.rejectedActions))),
                                  ("store_errors", .int(Int64(counters.storeErrors)))])),
            ("next_escalation", .optional(desk.nextDeadlineWall(now: clock.now()))),
            ("timer_lateness_ms", timerLateness.json),
            ("stale_firings_ignored", .int(Int64(desk.staleFiringsIgnored))),
        ]
    }

    func deviceList() -> [JSON] {
        config.devices.map { d in
            let s = desk.devices[d.id]
            let open = desk.openAlerts.values.filter { $0.device == d.id }.map(\.id).sorted()
            return .object([("id", .string(d.id)), ("driver", .string(d.driver.rawValue)), ("address", .string(d.address)),
                            ("grid", .string(d.grid)), ("resident", .string(d.resident)), ("location", .string(d.location)),
                            ("last_seen", .optional(s?.lastSeen)), ("battery", .string(s?.batteryLow == true ? "low" : "ok")),
                            ("open_alerts", .array(open.map { .string($0) }))])
        }
    }

    func onCall(_ req: JSON) throws(ControlError) -> [(String, JSON)] {
        var at = clock.now().wall
        if let text = req["at"]?.stringValue {
            guard let t = Timestamp(rfc3339: text) else { throw ControlError(.usage, "--at \"\(text)\" is not an RFC 3339 time") }
            at = t
        }
        let gridFilter = req["grid"]?.stringValue
        if let gridFilter, config.grid(id: gridFilter) == nil { throw ControlError(.notFound, "unknown grid \(gridFilter)") }
        let roster = desk.roster
        let grids = config.grids.filter { gridFilter == nil || $0.id == gridFilter }
        return [("at", .string(at.rfc3339)), ("timezone", .string(config.gateway.timezone)),
                ("grids", .array(grids.map { g in
                    .object([("grid", .string(g.id)), ("name", .string(g.name)),
                             ("primary", .array(roster.onCall(grid: g.id, role: .primary, at: at).map { .string($0) })),
                             ("backup", .array(roster.onCall(grid: g.id, role: .backup, at: at).map { .string($0) }))])
                }))]
    }

    func rosterGaps(_ req: JSON) throws(ControlError) -> [(String, JSON)] {
        let days = Int(req["days"]?.intValue ?? 7)
        guard (1...92).contains(days) else { throw ControlError(.usage, "--days must be 1 to 92") }
        let from = clock.now().wall
        let gaps = RosterGaps.find(roster: desk.roster, grids: config.grids.map(\.id), from: from, days: days)
        return [("from", .string(from.rfc3339)), ("days", .int(Int64(days))),
                ("gaps", .array(gaps.map { .object([("grid", .string($0.grid)), ("from", .string($0.from.rfc3339)), ("to", .string($0.to.rfc3339)),
                                                     ("minutes", .int(($0.to.milliseconds - $0.from.milliseconds) / 60000))]) }))]
    }

    var lastLinkErrorText: String? { connected ? nil : lastLinkError }
}

extension JSON {
    func requiredString(_ key: String) throws(ControlError) -> String {
        guard let s = self[key]?.stringValue, !s.isEmpty else { throw ControlError(.usage, "missing \"\(key)\"") }
        return s
    }
}
