import Foundation
import Glibc
import Logging
import OnekeyCore
import OnekeyLinux

/// `onekeyd [--config PATH] [--check-config] [--version]` (CONTRACT §2). Exit codes: sysexits.
public enum Daemon {
    public static let usage = "usage: onekeyd [--config PATH] [--check-config] [--version]"

    public static func main(_ arguments: [String]) -> Int32 {
        // A control client that hangs up must cost an EPIPE, never the process.
        signal(SIGPIPE, SIG_IGN)
        var path = ConfigFile.defaultPath
        var checkOnly = false
        var args = arguments.dropFirst()
        while let a = args.popFirst() {
            switch a {
            case "--config", "-c":
                guard let p = args.popFirst() else { return fail(64, usage) }
                path = p
            case "--check-config": checkOnly = true
            case "--version": print("onekeyd \(OnekeyVersion.string)"); return 0
            case "--help", "-h": print(usage); return 0
            default: return fail(64, "unknown argument \(a)\n\(usage)")
            }
        }

        let config: GatewayConfig
        do { config = try ConfigFile.load(path: path) } catch {
            // Exactly FILE:LINE: message, so editors and scripts can jump to it.
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            return 78
        }
        if checkOnly {
            print("\(path): ok (\(config.ports.count) port(s), \(config.devices.count) device(s), \(config.grids.count) grid(s), \(config.members.count) member(s), \(config.shifts.count) shift(s), \(config.policies.count) polic(ies))")
            // Roster gaps in the coming week are warnings, not errors (CONTRACT §6): exit 0.
            let warnings = RosterGaps.warnings(config: config, from: SystemClock().now().wall)
            if !warnings.isEmpty { FileHandle.standardError.write(Data((warnings.joined(separator: "\n") + "\n").utf8)) }
            return 0
        }

        // Stop and reload signals arrive through the event loop's signalfd: block them before
        // any thread exists (threads inherit the mask), and nothing else (a parent that blocked
        // other signals must not leave the daemon deaf).
        EventLoop.blockSignals([SIGTERM, SIGINT, SIGHUP])

        DaemonLogHandler.bootstrap(level: ProcessInfo.processInfo.environment["ONEKEYD_DEBUG"] != nil ? .debug : .info)
        let logger = Logger(label: "onekeyd")

        // One daemon per state_dir (CONTRACT §10): the lock comes before anything is opened.
        let lock: StoreLock
        do {
            try FileManager.default.createDirectory(atPath: config.gateway.stateDir, withIntermediateDirectories: true)
            lock = try StoreLock.acquire(directory: config.gateway.stateDir)
        } catch let e as StoreLock.Failure {
            if case .held = e { return fail(75, "\(e); refusing to start a second instance on \(config.gateway.stateDir)") }
            return fail(73, "cannot lock the state directory \(config.gateway.stateDir): \(e)")
        } catch {
            return fail(73, "cannot create the state directory \(config.gateway.stateDir): \(error)")
        }

        let store: Store
        do {
            store = try Store(directory: config.gateway.stateDir)
        } catch {
            return fail(73, "cannot open the store in \(config.gateway.stateDir): \(error)")
        }
        switch store.opening {
        case .replacedCorrupt(let reason, let movedTo):
            logger.critical("the store was corrupt (\(reason)): kept as \(movedTo); started a new, empty store")
        case .migrated(let from, let vacuumed):
            logger.notice("store migrated from \(from)\(vacuumed ? "" : " (not compacted: not enough free space)")")
        case .created, .opened:
            break
        }

        let loop: EventLoop
        do { loop = try EventLoop() } catch { return fail(71, "cannot create the event loop: \(error)") }
        let gateway: Gateway
        do { gateway = try Gateway(config: config, store: store, loop: loop, logger: logger) } catch {
            return fail(74, "cannot read the store: \(error)")
        }
        ConfigLoader.releaseFreedMemory()  // the parse tree is gone; nothing else runs yet
        let runtime = Runtime(gateway: gateway)
        do { try runtime.start() } catch {
            return fail(71, "cannot listen on \(config.gateway.controlSocket): \(error)")
        }
        let code = loop.run()
        gateway.storeClosed = true
        do { try store.close() } catch { logger.error("closing the store: \(error)") }
        withExtendedLifetime(runtime) {}
        withExtendedLifetime(lock) {}
        if code < 0 {
            logger.critical("event loop failed: \(String(cString: strerror(-code)))")
            return 70
        }
        logger.notice("stopped cleanly")
        return 0
    }

    static func fail(_ code: Int32, _ message: String) -> Int32 {
        FileHandle.standardError.write(Data("onekeyd: \(message)\n".utf8))
        return code
    }
}
