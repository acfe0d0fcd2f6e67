import Foundation
import Glibc
import OnekeyCore
import OnekeyLinux

/// Why a control request failed; `code` tells onekeyctl which exit status to use.
public struct ControlError: Error, Sendable {
    public enum Code: String, Sendable {
        case usage      // 64: malformed request
        case notFound = "not_found"  // 65: unknown alert, device or member
        case badData = "bad_data"    // 65: refused by the desk (already acked, not allowed, …)
        case config     // 78: reload with a bad file
        case denied     // 77: peer may not mutate
        case busy       // 69: too many clients
        case internalError = "internal"  // 70
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }

    var response: JSON { .object([("ok", .bool(false)), ("error", .string(message)), ("code", .string(code.rawValue))]) }
}

/// How a command answers: on the loop at once, or by a job run off the loop against a
/// snapshot it captured (work that grows with the configuration), or after a reload.
enum ControlReply: Sendable {
    case now([(String, JSON)])
    case offLoop(@Sendable () throws(ControlError) -> [(String, JSON)])
    case afterReload
}

/// The type a request field must have; anything else is a usage error, never a default.
enum FieldType: Sendable {
    case string, bool, int

    func accepts(_ v: JSON) -> Bool {
        switch (self, v) {
        case (.string, .string), (.bool, .bool), (.int, .int): return true
        default: return false
        }
    }

    var name: String {
        switch self { case .string: "a string"; case .bool: "true or false"; case .int: "an integer" }
    }
}

/// One control command: its name, its fields, whether it changes state (and so needs a
/// trusted peer), and what it does.
struct ControlCommand: Sendable {
    let name: String
    let mutates: Bool
    let fields: [String: FieldType]
    let run: @Sendable (Gateway, JSON) throws(ControlError) -> ControlReply
}

extension Gateway {
    /// The table of control commands (CONTRACT §2, §8).
    static let controlCommands: [ControlCommand] = [
        ControlCommand(name: "status", mutates: false, fields: [:]) { g, _ in .now(g.statusFields()) },
        ControlCommand(name: "devices", mutates: false, fields: [:]) { g, _ in
            let desk = g.desk
            return .offLoop { Gateway.deviceList(desk) }
        },
        ControlCommand(name: "alerts", mutates: false, fields: ["all": .bool]) { g, req throws(ControlError) in
            let all = req["all"]?.boolValue ?? false
            let alerts: [Alert]
            if all {
                do { alerts = try g.store.alerts(includeClosed: true) } catch { throw ControlError(.internalError, "\(error)") }
            } else {
                // Open alerts from the desk: right also while the store cannot write (CONTRACT §10).
                alerts = g.desk.openAlerts.values.sorted { $0.id > $1.id }
            }
            return .now([("alerts", .array(alerts.map { Payloads.alert($0, gateway: g.config.gateway.id, key: nil) }))])
        },
        ControlCommand(name: "alert", mutates: false, fields: ["id": .string]) { g, req throws(ControlError) in
            let id = try req.requiredString("id")
            let found: Alert?
            let events: [GatewayEvent]
            do {
                found = try g.desk.openAlerts[id] ?? g.store.alert(id: id)
                events = try g.store.events(alert: id)
            } catch { throw ControlError(.internalError, "\(error)") }
            guard let alert = found else { throw ControlError(.notFound, "unknown alert \(id)") }
            let gw = g.config.gateway.id
            return .now([("alert", Payloads.alert(alert, gateway: gw, key: nil)),
                         ("events", .array(events.map { Payloads.event($0, gateway: gw, key: $0.id) }))])
        },
        ControlCommand(name: "ack", mutates: true, fields: actionFields) { g, req throws(ControlError) in .now(try g.controlAction(.ack, req)) },
        ControlCommand(name: "resolve", mutates: true, fields: actionFields) { g, req throws(ControlError) in .now(try g.controlAction(.resolve, req)) },
        ControlCommand(name: "decline", mutates: true, fields: actionFields) { g, req throws(ControlError) in .now(try g.controlAction(.decline, req)) },
        ControlCommand(name: "oncall", mutates: false, fields: ["grid": .string, "at": .string]) { g, req throws(ControlError) in try g.onCall(req) },
        ControlCommand(name: "roster-gaps", mutates: false, fields: ["days": .int]) { g, req throws(ControlError) in try g.rosterGaps(req) },
        ControlCommand(name: "test-alert", mutates: true, fields: ["device": .string]) { g, req throws(ControlError) in
            let device = try req.requiredString("device")
            guard let outcome = g.desk.testAlert(device: device, at: g.clock.now()) else {
                throw ControlError(.notFound, "unknown device \(device)")
            }
            g.apply(outcome)
            return .now([("alert", .optional(outcome.events.first?.alertID))])
        },
        ControlCommand(name: "reload", mutates: true, fields: [:]) { _, _ in .afterReload },
        ControlCommand(name: "outbox", mutates: false, fields: [:]) { g, _ throws(ControlError) in
            let s: (count: Int, oldest: Timestamp?, topics: [(topic: String, count: Int, since: Timestamp)])
            do { s = try g.store.outboxSummary() } catch { throw ControlError(.internalError, "\(error)") }
            return .now([("count", .int(Int64(s.count + g.journal.heldMessages))), ("held", .int(Int64(g.journal.heldMessages))), ("oldest", .optional(s.oldest)), ("in_flight", .int(Int64(g.outboxInFlight))),
                         ("connected", .bool(g.connected)),
                         ("topics", .array(s.topics.map { .object([("topic", .string($0.topic)), ("count", .int(Int64($0.count))), ("since", .string($0.since.rfc3339))]) }))])
        },
        // Addresses heard but not enrolled. Until the desk keeps them (engineer `desk`), the list is empty.
        ControlCommand(name: "unknown", mutates: false, fields: [:]) { g, _ in .now(g.unknownFields()) },
        // The second path (§11).
        ControlCommand(name: "modem", mutates: false, fields: [:]) { g, _ in .now([("modem", g.modemStatus.fields)]) },
    ]

    /// Addresses heard but not enrolled (the installer's learn mode), most recently heard first.
    func unknownFields() -> [(String, JSON)] { Payloads.unknown(desk.unknownAddresses, evicted: desk.unknownEvicted) }

    static let actionFields: [String: FieldType] = ["id": .string, "member": .string, "note": .string]

    /// Answers one request line through `answer` (now, or later for work done off the loop).
    /// Never fails: every failure is an `{"ok":false,…}` answer.
    func control(_ line: [UInt8], peer: PeerCredentials, answer: @escaping ([UInt8]) -> Void) {
        let request: JSON
        do { request = try JSON.parse(line) } catch {
            return answer(ControlError(.usage, "malformed request: \(error)").response.bytes)
        }
        let command: ControlCommand
        do { command = try Self.validate(request) } catch { return answer(error.response.bytes) }
        if command.mutates && !peer.isTrusted() {
            logLimited("control-denied", .warning, "refused \(command.name) from uid \(peer.uid) (pid \(peer.pid)): not root, nor the daemon's user or group")
            return answer(ControlError(.denied, "\(command.name) needs root or the onekeyd user or group").response.bytes)
        }
        let reply: ControlReply
        do { reply = try command.run(self, request) } catch { return answer(error.response.bytes) }
        switch reply {
        case .now(let fields):
            answer(JSON.object([("ok", .bool(true))] + fields).bytes)
        case .offLoop(let job):
            offload.run({
                do throws(ControlError) { return .answer(JSON.object([("ok", .bool(true))] + (try job())).bytes) } catch { return .answer(error.response.bytes) }
            }) { result in
                if case .answer(let bytes) = result { answer(bytes) }
            }
        case .afterReload:
            reload { [unowned self] result in
                switch result {
                case .success: answer(JSON.object([("ok", .bool(true)), ("config", .string(config.path))]).bytes)
                case .failure(let error): answer(ControlError(.config, "\(error)").response.bytes)
                }
            }
        }
    }

    /// The command a request names, once every field has been checked: known, of the right type.
    static func validate(_ request: JSON) throws(ControlError) -> ControlCommand {
        guard case .object(let fields) = request, let name = request["cmd"]?.stringValue else {
            throw ControlError(.usage, "request must be an object with a \"cmd\" string")
        }
        guard let command = controlCommands.first(where: { $0.name == name }) else {
            throw ControlError(.usage, "unknown command \"\(name)\" (known: \(controlCommands.map(\.name).joined(separator: ", ")))")
        }
        var seen = Set<String>()
        for (key, value) in fields {
            guard seen.insert(key).inserted else { throw ControlError(.usage, "field \"\(key)\" given twice") }
            if key == "cmd" { continue }
            guard let type = command.fields[key] else {
                let known = command.fields.keys.sorted()
                throw ControlError(.usage, "\(name) has no field \"\(key)\"\(known.isEmpty ? "" : " (fields: \(known.joined(separator: ", ")))")")
            }
            guard type.accepts(value) else { throw ControlError(.usage, "field \"\(key)\" of \(name) must be \(type.name)") }
        }
        return command
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
            ("store", .object([("path", .string(store.path)), ("fault", .optional(journal.fault)),
                               ("held_messages", .int(Int64(journal.heldMessages))), ("held_events", .int(Int64(journal.heldEvents))),
                               ("dropped", .int(Int64(journal.dropped)))])),
            ("ports", .array(ports.values.sorted { $0.config.path < $1.config.path }.map { $0.statusJSON() })),
            ("counters", .object([("frames", .int(Int64(counters.frames))), ("garbage_bytes", .int(Int64(counters.garbageBytes))),
                                  ("repeat_frames", .int(Int64(counters.repeats))), ("pages", .int(Int64(counters.pages))),
                                  ("published", .int(Int64(counters.published))), ("rejected_actions", .int(Int64(counters.rejectedActions))),
                                  ("store_errors", .int(Int64(counters.storeErrors))), ("commits", .int(Int64(counters.commits)))])),
            ("next_escalation", .optional(desk.nextDeadlineWall(now: clock.now()))),
            ("timer_lateness_ms", timerLateness.json),
            ("stale_firings_ignored", .int(Int64(desk.staleFiringsIgnored))),
            ("control", .object([("background_jobs", .int(Int64(offload.inProgress)))])),
            ("modem", modemStatus.fields),
        ]
    }

    /// Every enrolled device with its state (runs off the loop on a copy of the desk).
    static func deviceList(_ desk: AlertDesk) -> [(String, JSON)] {
        var openByDevice: [String: [String]] = [:]
        for a in desk.openAlerts.values { openByDevice[a.device, default: []].append(a.id) }
        return [("devices", .array(desk.config.devices.map { d in
            let s = desk.devices[d.id]
            let open = (openByDevice[d.id] ?? []).sorted()
            return .object([("id", .string(d.id)), ("driver", .string(d.driver.rawValue)), ("address", .string(d.address)),
                            ("grid", .string(d.grid)), ("resident", .string(d.resident)), ("location", .string(d.location)),
                            ("last_seen", .optional(s?.lastSeen)), ("battery", .string(s?.batteryLow == true ? "low" : "ok")),
                            ("open_alerts", .array(open.map { .string($0) }))])
        }))]
    }

    func onCall(_ req: JSON) throws(ControlError) -> ControlReply {
        let at: Timestamp
        if let text = req["at"]?.stringValue {
            guard let t = Timestamp(rfc3339: text) else { throw ControlError(.usage, "--at \"\(text)\" is not an RFC 3339 time") }
            at = t
        } else {
            at = clock.now().wall
        }
        let gridFilter = req["grid"]?.stringValue
        if let gridFilter, config.grid(id: gridFilter) == nil { throw ControlError(.notFound, "unknown grid \(gridFilter)") }
        let desk = self.desk
        return .offLoop {
            let roster = desk.roster
            let grids = desk.config.grids.filter { gridFilter == nil || $0.id == gridFilter }
            return [("at", .string(at.rfc3339)), ("timezone", .string(desk.config.gateway.timezone)),
                    ("grids", .array(grids.map { g in
                        .object([("grid", .string(g.id)), ("name", .string(g.name)),
                                 ("primary", .array(roster.onCall(grid: g.id, role: .primary, at: at).map { .string($0) })),
                                 ("backup", .array(roster.onCall(grid: g.id, role: .backup, at: at).map { .string($0) }))])
                    }))]
        }
    }

    func rosterGaps(_ req: JSON) throws(ControlError) -> ControlReply {
        let days = Int(req["days"]?.intValue ?? 7)
        guard (1...92).contains(days) else { throw ControlError(.usage, "--days must be 1 to 92") }
        let from = clock.now().wall
        let desk = self.desk
        return .offLoop {
            let gaps = RosterGaps.find(roster: desk.roster, grids: desk.config.grids.map(\.id), from: from, days: days)
            return [("from", .string(from.rfc3339)), ("days", .int(Int64(days))),
                    ("gaps", .array(gaps.map { .object([("grid", .string($0.grid)), ("from", .string($0.from.rfc3339)), ("to", .string($0.to.rfc3339)),
                                                         ("minutes", .int(($0.to.milliseconds - $0.from.milliseconds) / 60000))]) }))]
        }
    }

    var lastLinkErrorText: String? { connected ? nil : lastLinkError }

    var modemStatus: ModemStatus { modem?.status ?? .notConfigured }
}

extension JSON {
    func requiredString(_ key: String) throws(ControlError) -> String {
        guard let s = self[key]?.stringValue, !s.isEmpty else { throw ControlError(.usage, "missing \"\(key)\"") }
        return s
    }
}
