import Foundation
import Glibc
import OnekeyCore
import OnekeyLinux

/// `onekeyctl [--socket PATH] [--json] COMMAND` — a thin client of the control socket
/// (CONTRACT §2, §8). Subcommands are a table: each turns its arguments into one request and
/// renders the response for a terminal; `--json` prints the daemon's response as is.
public enum Onekeyctl {
    public static let defaultSocket = "/run/onekeyd/control.sock"

    struct Command: Sendable {
        let name: String
        let usage: String
        let summary: String
        /// Builds the request from the arguments after the command name.
        let request: @Sendable ([String]) throws(UsageError) -> [(String, JSON)]
        let render: @Sendable (JSON, Timestamp) -> String
    }

    struct UsageError: Error { let message: String }

    static let commands: [Command] = [
        Command(name: "status", usage: "status", summary: "gateway, broker link, ports, outbox and counters",
                request: { args throws(UsageError) in try noArgs(args); return [] }, render: Render.status),
        Command(name: "devices", usage: "devices", summary: "enrolled devices and when they were last heard",
                request: { args throws(UsageError) in try noArgs(args); return [] }, render: Render.devices),
        Command(name: "alerts", usage: "alerts [--all]", summary: "open alerts (--all: also closed ones)",
                request: { args throws(UsageError) in
                    var p = ArgParser(args); let all = p.flag("--all"); try p.finish()
                    return [("all", .bool(all))]
                }, render: Render.alerts),
        Command(name: "alert", usage: "alert ID", summary: "one alert and its events",
                request: { args throws(UsageError) in
                    var p = ArgParser(args); let id = try p.positional("ID"); try p.finish()
                    return [("id", .string(id))]
                }, render: Render.alert),
        Command(name: "ack", usage: "ack ID --member M", summary: "acknowledge for a member (stops escalation)",
                request: { args throws(UsageError) in try action(args) }, render: Render.action("acked")),
        Command(name: "resolve", usage: "resolve ID --member M [--note TEXT]", summary: "close an alert",
                request: { args throws(UsageError) in try action(args, note: true) }, render: Render.action("resolved")),
        Command(name: "decline", usage: "decline ID --member M", summary: "a member cannot go: fire the next step now",
                request: { args throws(UsageError) in try action(args) }, render: Render.action("declined")),
        Command(name: "oncall", usage: "oncall [--grid G] [--at RFC3339]", summary: "who is on call now (or at a time)",
                request: { args throws(UsageError) in
                    var p = ArgParser(args)
                    var r: [(String, JSON)] = []
                    if let g = try p.option("--grid") { r.append(("grid", .string(g))) }
                    if let at = try p.option("--at") { r.append(("at", .string(at))) }
                    try p.finish()
                    return r
                }, render: Render.oncall),
        Command(name: "roster", usage: "roster gaps [--days N]", summary: "windows in which a grid has no primary on shift",
                request: { args throws(UsageError) in
                    var p = ArgParser(args)
                    guard try p.positional("gaps") == "gaps" else { throw UsageError(message: "usage: onekeyctl roster gaps [--days N]") }
                    var r: [(String, JSON)] = [("cmd", .string("roster-gaps"))]
                    if let d = try p.option("--days") {
                        guard let n = Int(d), n > 0 else { throw UsageError(message: "--days takes a positive number") }
                        r.append(("days", .int(Int64(n))))
                    }
                    try p.finish()
                    return r
                }, render: Render.gaps),
        Command(name: "test-alert", usage: "test-alert --device D", summary: "send a press marked test through the whole path",
                request: { args throws(UsageError) in
                    var p = ArgParser(args)
                    guard let d = try p.option("--device") else { throw UsageError(message: "test-alert needs --device D") }
                    try p.finish()
                    return [("device", .string(d))]
                }, render: { r, _ in "test alert \(r["alert"]?.stringValue ?? "?") raised" }),
        Command(name: "reload", usage: "reload", summary: "re-read the configuration file",
                request: { args throws(UsageError) in try noArgs(args); return [] },
                render: { r, _ in "configuration reloaded from \(r["config"]?.stringValue ?? "?")" }),
        Command(name: "outbox", usage: "outbox", summary: "messages waiting for the broker, and since when",
                request: { args throws(UsageError) in try noArgs(args); return [] }, render: Render.outbox),
        Command(name: "modem", usage: "modem", summary: "the second path: modem registration, signal, SIM, SMS waiting and sent",
                request: { args throws(UsageError) in try noArgs(args); return [] }, render: { r, _ in Render.modem(r["modem"]) }),
    ]

    static func noArgs(_ args: [String]) throws(UsageError) {
        if let a = args.first { throw UsageError(message: "unexpected argument \(a)") }
    }

    static func action(_ args: [String], note: Bool = false) throws(UsageError) -> [(String, JSON)] {
        var p = ArgParser(args)
        let id = try p.positional("ID")
        guard let m = try p.option("--member") else { throw UsageError(message: "--member M is required") }
        var r: [(String, JSON)] = [("id", .string(id)), ("member", .string(m))]
        if note, let n = try p.option("--note") { r.append(("note", .string(n))) }
        try p.finish()
        return r
    }

    public static var usage: String {
        var s = "usage: onekeyctl [--socket PATH] [--json] COMMAND\n\ncommands:\n"
        let width = commands.map(\.usage.count).max() ?? 0
        for c in commands { s += "  \(c.usage.padding(toLength: width, withPad: " ", startingAt: 0))  \(c.summary)\n" }
        return s
    }

    public static func main(_ arguments: [String]) -> Int32 {
        var socket = ProcessInfo.processInfo.environment["ONEKEYD_SOCKET"] ?? defaultSocket
        var json = false
        var args = Array(arguments.dropFirst())
        while let a = args.first, a.hasPrefix("-") {
            args.removeFirst()
            switch a {
            case "--socket":
                guard !args.isEmpty else { return fail(64, "--socket needs a path") }
                socket = args.removeFirst()
            case "--json": json = true
            case "--help", "-h": print(usage, terminator: ""); return 0
            default: return fail(64, "unknown option \(a)\n\(usage)")
            }
        }
        guard let name = args.first else { return fail(64, usage) }
        guard let command = commands.first(where: { $0.name == name }) else { return fail(64, "unknown command \(name)\n\(usage)") }
        var fields: [(String, JSON)]
        do { fields = try command.request(Array(args.dropFirst())) } catch { return fail(64, "\(error.message)\nusage: onekeyctl \(command.usage)") }
        if !fields.contains(where: { $0.0 == "cmd" }) { fields.insert(("cmd", .string(name)), at: 0) }

        let response: JSON
        do { response = try request(JSON.object(fields), socket: socket) } catch {
            return fail(69, "cannot reach onekeyd at \(socket): \(error)")
        }
        if json { print(response.text) }
        guard response["ok"]?.boolValue == true else {
            let code: Int32
            switch response["code"]?.stringValue {
            case "usage": code = 64
            case "not_found", "bad_data": code = 65
            case "config": code = 78
            case "denied": code = 77
            default: code = 70
            }
            return fail(code, response["error"]?.stringValue ?? "request failed")
        }
        if !json { print(command.render(response, SystemClock().now().wall)) }
        return 0
    }

    /// One request, one response line.
    public static func request(_ body: JSON, socket: String, timeoutMs: Int32 = 15_000) throws -> JSON {
        try JSON.parse(UnixSocket.exchangeLine(path: socket, body.bytes, timeoutMs: timeoutMs))
    }

    static func fail(_ code: Int32, _ message: String) -> Int32 {
        FileHandle.standardError.write(Data("onekeyctl: \(message)\n".utf8))
        return code
    }
}

/// `--flag`, `--option VALUE` and positionals, in any order.
struct ArgParser {
    var args: [String]
    init(_ args: [String]) { self.args = args }

    mutating func flag(_ name: String) -> Bool {
        guard let i = args.firstIndex(of: name) else { return false }
        args.remove(at: i)
        return true
    }

    mutating func option(_ name: String) throws(Onekeyctl.UsageError) -> String? {
        guard let i = args.firstIndex(of: name) else { return nil }
        guard i + 1 < args.count else { throw Onekeyctl.UsageError(message: "\(name) needs a value") }
        let v = args[i + 1]
        args.removeSubrange(i...(i + 1))
        return v
    }

    mutating func positional(_ what: String) throws(Onekeyctl.UsageError) -> String {
        guard let i = args.firstIndex(where: { !$0.hasPrefix("--") }) else { throw Onekeyctl.UsageError(message: "missing \(what)") }
        return args.remove(at: i)
    }

    func finish() throws(Onekeyctl.UsageError) {
        if let a = args.first { throw Onekeyctl.UsageError(message: "unexpected argument \(a)") }
    }
}
