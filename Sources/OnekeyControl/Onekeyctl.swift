import ArgumentParser
import Foundation
import Glibc
import OnekeyCore
import OnekeyLinux

/// `onekeyctl [--socket PATH] [--json] COMMAND` — a thin client of the control socket
/// (CONTRACT §2, §8), built on swift-argument-parser: `help COMMAND`, `COMMAND --help`,
/// `--version` and shell completions (`--generate-completion-script bash|zsh|fish`) come with it.
/// Each command is one type in `Commands.swift`: its arguments become one request line, and its
/// answer is rendered for a terminal (`Render`) or printed as is with `--json`.
public enum Onekeyctl {
    public static let defaultSocket = "/run/onekeyd/control.sock"
    /// Kept equal to `onekeyd --version` (checked by SystemPackageTests).
    public static let version = "0.1.0"

    /// Runs one invocation; returns the process exit code (sysexits, CONTRACT §2).
    public static func main(_ arguments: [String]) -> Int32 {
        let args = hoistingGlobalOptions(Array(arguments.dropFirst()))
        if let name = firstCommandName(args), !RootCommand.names.contains(name) {
            return fail(64, "unknown command \(name); onekeyctl --help lists the commands")
        }
        do {
            var command = try RootCommand.parseAsRoot(args)
            try command.run()
            return 0
        } catch let exit as ExitCode {
            return exit.rawValue
        } catch {
            let code = RootCommand.exitCode(for: error).rawValue
            let message = RootCommand.fullMessage(for: error)
            if code == 0 {
                print(message)
                return 0
            }
            // ArgumentParser says "Error: …" and then the usage; onekeyctl's errors start with
            // "onekeyctl: " like every other line it writes to stderr.
            let text = message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message
            return fail(code == ExitCode.validationFailure.rawValue ? 64 : code, text)
        }
    }

    /// `--socket PATH` and `--json` may stand before the command (CONTRACT §2): they are moved
    /// behind it, where the command's own parser takes them.
    static func hoistingGlobalOptions(_ args: [String]) -> [String] {
        var before: [String] = []
        var global: [String] = []
        var i = 0
        while i < args.count, args[i].hasPrefix("-") {
            let a = args[i]
            if a == "--json" || a.hasPrefix("--socket=") {
                global.append(a)
            } else if a == "--socket", i + 1 < args.count {
                global += [a, args[i + 1]]
                i += 1
            } else {
                before.append(a)
            }
            i += 1
        }
        let rest = Array(args[i...])
        guard !rest.isEmpty, !global.isEmpty else { return before + global + rest }
        // `help COMMAND` explains; where it would connect to does not matter.
        if rest[0] == "help" { return before + rest }
        // Behind the innermost command name (`roster gaps`), before that command's arguments.
        var cut = 1
        if rest[0] == "roster", rest.count > 1, !rest[1].hasPrefix("-") { cut = 2 }
        return before + Array(rest[..<cut]) + global + Array(rest[cut...])
    }

    static func firstCommandName(_ args: [String]) -> String? {
        var i = 0
        while i < args.count {
            if args[i] == "--socket" || args[i] == "--generate-completion-script" { i += 2; continue }
            if !args[i].hasPrefix("-") { return args[i] }
            i += 1
        }
        return nil
    }

    /// One request, one response line.
    public static func request(_ body: JSON, socket: String, timeoutMs: Int32 = 15_000) throws -> JSON {
        try JSON.parse(UnixSocket.exchangeLine(path: socket, body.bytes, timeoutMs: timeoutMs))
    }

    /// Sends one command and prints its answer; throws `ExitCode` with the contract's code.
    static func send(_ cmd: String, _ fields: [(String, JSON)], connection: Connection, timeoutMs: Int32 = 15_000,
                     render: (JSON, Timestamp) -> String) throws {
        let socket = connection.socketPath
        let response: JSON
        do {
            response = try request(JSON.object([("cmd", .string(cmd))] + fields), socket: socket, timeoutMs: timeoutMs)
        } catch let e as SystemError where e.errno == EACCES || e.errno == EPERM {
            throw ExitCode(fail(77, "not permitted to use \(socket): \(e); join the onekeyd group (adduser USER onekeyd, then log in again) or run as root"))
        } catch {
            throw ExitCode(fail(69, "cannot reach onekeyd at \(socket): \(error)"))
        }
        if connection.json { print(response.text) }
        guard response["ok"]?.boolValue == true else {
            throw ExitCode(fail(exitCode(forErrorCode: response["code"]?.stringValue), response["error"]?.stringValue ?? "request failed"))
        }
        if !connection.json { print(render(response, SystemClock().now().wall)) }
    }

    /// The daemon's error `code` → sysexits.
    static func exitCode(forErrorCode code: String?) -> Int32 {
        switch code {
        case "usage": return 64
        case "not_found", "bad_data": return 65
        case "config": return 78
        case "denied": return 77
        case "unavailable": return 69
        default: return 70
        }
    }

    @discardableResult
    static func fail(_ code: Int32, _ message: String) -> Int32 {
        FileHandle.standardError.write(Data("onekeyctl: \(message)\n".utf8))
        return code
    }
}

/// The options every command takes, before or after its name.
struct Connection: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The daemon's control socket (default: $ONEKEYD_SOCKET, else \(Onekeyctl.defaultSocket)).", valueName: "path"),
            completion: .file())
    var socket: String?

    @Flag(name: .long, help: "Print the daemon's answer as one JSON document.")
    var json = false

    var socketPath: String { socket ?? ProcessInfo.processInfo.environment["ONEKEYD_SOCKET"] ?? Onekeyctl.defaultSocket }
}

struct RootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "onekeyctl",
        abstract: "Talk to a running onekeyd panic-button gateway over its control socket.",
        discussion: """
            Options may stand before or after the command. Exit codes: 0 ok, 64 usage, 65 unknown \
            alert/device/member, 69 daemon not reachable, 77 not permitted (join the onekeyd group), \
            78 configuration error.
            """,
        version: "onekeyctl \(Onekeyctl.version)",
        subcommands: [Status.self, Devices.self, Alerts.self, AlertCommand.self, Ack.self, Resolve.self, Decline.self,
                      Oncall.self, Roster.self, TestAlert.self, Reload.self, Outbox.self, Unknown.self, Modem.self])

    /// Command names the parser knows, including its own `help`.
    static var names: Set<String> {
        Set(configuration.subcommands.map { $0._commandName } + ["help"])
    }
}
