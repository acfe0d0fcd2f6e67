import ArgumentParser
import OnekeyCore

/// A command that sends one request to the daemon and renders its answer.
protocol ControlCommand: ParsableCommand {
    var connection: Connection { get }
    /// The request's `cmd`: the command's name unless it says otherwise.
    static var cmd: String { get }
    /// The request's other fields.
    var fields: [(String, JSON)] { get }
    static var timeoutMs: Int32 { get }
    static func render(_ response: JSON, _ now: Timestamp) -> String
}

extension ControlCommand {
    static var cmd: String { _commandName }
    static var timeoutMs: Int32 { 15_000 }
    var fields: [(String, JSON)] { [] }
    func run() throws {
        try Onekeyctl.send(Self.cmd, fields, connection: connection, timeoutMs: Self.timeoutMs, render: Self.render)
    }
}

struct Status: ControlCommand {
    static let configuration = CommandConfiguration(abstract: "Gateway, broker link, ports, outbox and counters.")
    @OptionGroup var connection: Connection
    static func render(_ r: JSON, _ now: Timestamp) -> String { Render.status(r, now) }
}

struct Devices: ControlCommand {
    static let configuration = CommandConfiguration(abstract: "Enrolled devices and when they were last heard.")
    @OptionGroup var connection: Connection
    static func render(_ r: JSON, _ now: Timestamp) -> String { Render.devices(r, now) }
}

struct Alerts: ControlCommand {
    static let configuration = CommandConfiguration(abstract: "Open alerts.")
    @OptionGroup var connection: Connection
    @Flag(help: "Also list closed alerts.") var all = false
    var fields: [(String, JSON)] { [("all", .bool(all))] }
    static func render(_ r: JSON, _ now: Timestamp) -> String { Render.alerts(r, now) }
}

struct AlertCommand: ControlCommand {
    static let configuration = CommandConfiguration(commandName: "alert", abstract: "One alert and its events.")
    @OptionGroup var connection: Connection
    @Argument(help: "The alert's id.") var id: String
    var fields: [(String, JSON)] { [("id", .string(id))] }
    static func render(_ r: JSON, _ now: Timestamp) -> String { Render.alert(r, now) }
}

/// What `ack`, `resolve` and `decline` share: an alert and the member acting on it.
struct MemberAction: ParsableArguments {
    @Argument(help: "The alert's id.") var id: String
    @Option(help: ArgumentHelp("The member acting (a member id from the configuration).", valueName: "M")) var member: String
    var fields: [(String, JSON)] { [("id", .string(id)), ("member", .string(member))] }
}

/// `ack`, `resolve`, `decline`: a member acting on an alert; the answer shows the alert after it.
protocol MemberActionCommand: ControlCommand {
    var action: MemberAction { get }
    static var verb: String { get }
}

extension MemberActionCommand {
    var fields: [(String, JSON)] { action.fields }
    static func render(_ r: JSON, _ now: Timestamp) -> String { Render.action(verb)(r, now) }
}

struct Ack: MemberActionCommand {
    static let configuration = CommandConfiguration(abstract: "Acknowledge an alert for a member: escalation stops.")
    static let verb = "acked"
    @OptionGroup var connection: Connection
    @OptionGroup var action: MemberAction
}

struct Resolve: MemberActionCommand {
    static let configuration = CommandConfiguration(abstract: "Close an alert.")
    static let verb = "resolved"
    @OptionGroup var connection: Connection
    @OptionGroup var action: MemberAction
    @Option(help: ArgumentHelp("What was found and done.", valueName: "text")) var note: String?
    var fields: [(String, JSON)] { action.fields + (note.map { [("note", .string($0))] } ?? []) }
}

struct Decline: MemberActionCommand {
    static let configuration = CommandConfiguration(abstract: "A member cannot go: fire the next escalation step now.")
    static let verb = "declined"
    @OptionGroup var connection: Connection
    @OptionGroup var action: MemberAction
}

struct Oncall: ControlCommand {
    static let configuration = CommandConfiguration(abstract: "Who is on call now, or at a given time.")
    @OptionGroup var connection: Connection
    @Option(help: ArgumentHelp("Only this grid.", valueName: "G")) var grid: String?
    @Option(help: ArgumentHelp("The moment to ask about, RFC 3339 (e.g. 2026-01-01T03:00:00+08:00).", valueName: "RFC3339")) var at: String?
    var fields: [(String, JSON)] { (grid.map { [("grid", .string($0))] } ?? []) + (at.map { [("at", .string($0))] } ?? []) }
    static func render(_ r: JSON, _ now: Timestamp) -> String { Render.oncall(r, now) }
}

struct Roster: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Roster checks.", subcommands: [Gaps.self])

    struct Gaps: ControlCommand {
        static let configuration = CommandConfiguration(abstract: "Windows in which a grid has no primary on shift.")
        static var cmd: String { "roster-gaps" }
        @OptionGroup var connection: Connection
        @Option(help: ArgumentHelp("How many days ahead to search (default 7).", valueName: "N")) var days: Int?
        func validate() throws {
            if let days, days <= 0 { throw ValidationError("--days takes a positive number") }
        }
        var fields: [(String, JSON)] { days.map { [("days", .int(Int64($0)))] } ?? [] }
        static var timeoutMs: Int32 { 120_000 }
        static func render(_ r: JSON, _ now: Timestamp) -> String { Render.gaps(r, now) }
    }
}

struct TestAlert: ControlCommand {
    static let configuration = CommandConfiguration(commandName: "test-alert", abstract: "Send a press marked test through the whole path.")
    @OptionGroup var connection: Connection
    @Option(help: ArgumentHelp("The enrolled device to press.", valueName: "D")) var device: String
    var fields: [(String, JSON)] { [("device", .string(device))] }
    static func render(_ r: JSON, _ now: Timestamp) -> String { "test alert \(r["alert"]?.stringValue ?? "?") raised" }
}

struct Reload: ControlCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-read the configuration file; returns once it is in force.",
        discussion: "A file with errors is refused (exit 78, FILE:LINE: message) and the running configuration stays. systemctl reload onekeyd runs this.")
    @OptionGroup var connection: Connection
    /// A district's file takes seconds to parse on a small board; systemd gives ExecReload 90 s.
    static var timeoutMs: Int32 { 85_000 }
    static func render(_ r: JSON, _ now: Timestamp) -> String { "configuration reloaded from \(r["config"]?.stringValue ?? "?")" }
}

struct Outbox: ControlCommand {
    static let configuration = CommandConfiguration(abstract: "Messages waiting for the broker, and since when.")
    @OptionGroup var connection: Connection
    static func render(_ r: JSON, _ now: Timestamp) -> String { Render.outbox(r, now) }
}

struct Unknown: ControlCommand {
    static let configuration = CommandConfiguration(
        abstract: "Addresses heard but not enrolled: what an installer needs to enrol a new button.",
        discussion: "Press the new button a few times, find its address here, and add a [[device]] with that driver and address to the configuration.")
    @OptionGroup var connection: Connection
    static func render(_ r: JSON, _ now: Timestamp) -> String { Render.unknown(r, now) }
}

struct Modem: ControlCommand {
    static let configuration = CommandConfiguration(abstract: "The second path's modem: SIM, registration, signal, SMS and calls.")
    @OptionGroup var connection: Connection
    static func render(_ r: JSON, _ now: Timestamp) -> String { Render.modem(r, now) }
}
