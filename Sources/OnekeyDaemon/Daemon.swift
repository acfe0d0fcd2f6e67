import Foundation
import Glibc
import Logging
import OnekeyCore
import OnekeyLinux
import ServiceLifecycle

/// `onekeyd [--config PATH] [--check-config] [--version]` (CONTRACT §2). Exit codes: sysexits.
public enum Daemon {
    public static let usage = "usage: onekeyd [--config PATH] [--check-config] [--version]"

    public static func main(_ arguments: [String]) async -> Int32 {
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

        // Start from a clear signal mask: a parent that blocked SIGTERM/SIGHUP must not leave
        // the daemon deaf to its service manager.
        var none = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, nil)

        DaemonLogHandler.bootstrap(level: ProcessInfo.processInfo.environment["ONEKEYD_DEBUG"] != nil ? .debug : .info)
        let logger = Logger(label: "onekeyd")

        let store: Store
        do {
            store = try Store(directory: config.gateway.stateDir,
                              synchronousFull: ProcessInfo.processInfo.environment["ONEKEYD_BENCH_RELAXED_DURABILITY"] == nil)
        } catch {
            return fail(73, "cannot open the store in \(config.gateway.stateDir): \(error)")
        }

        let gateway: Gateway
        do { gateway = try Gateway(config: config, store: store, logger: logger) } catch {
            return fail(74, "cannot read the store: \(error)")
        }
        let control = ControlServer(path: config.gateway.controlSocket, gateway: gateway)

        // Everything READY promises happens here, before the services start.
        var setupError: String?
        var hotplug: Hotplug?
        gateway.queue.sync {
            for p in config.ports {
                let reader = PortReader(config: p, gateway: gateway)
                gateway.ports[p.path] = reader
                reader.open()
            }
            // Watch for hotplug first, then enumerate, so nothing slips in between.
            do {
                hotplug = try Hotplug(gateway: gateway)
                hotplug?.start()
            } catch {
                logger.warning("udev monitor unavailable, receivers plugged in later need a restart: \(error)")
            }
            discoverReceivers(gateway: gateway)
            do { try control.start() } catch { setupError = "cannot listen on \(config.gateway.controlSocket): \(error)" }
            // Supervised devices' silence timers start; steps that fell due while the daemon was
            // down fire now, once.
            gateway.desk.startSupervision(at: gateway.clock.now())
            gateway.apply(gateway.desk.fireDueSteps(at: gateway.clock.now()))
            gateway.rearmEscalation()
            if !gateway.desk.openAlerts.isEmpty {
                logger.notice("resuming \(gateway.desk.openAlerts.count) open alert(s) from the store")
            }
        }
        if let setupError { return fail(71, setupError) }

        let services: [any Service] = [BrokerService(gateway: gateway), InputService(gateway: gateway, control: control, hotplug: hotplug), SupervisorService(gateway: gateway)]
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            logger.critical("stopped on error: \(error)")
            return 70
        }
        // Let anything still queued (late broker events) run against a live gateway, then close the store.
        withExtendedLifetime(gateway) {
            gateway.queue.sync {
                gateway.storeClosed = true
                do { try store.close() } catch { logger.error("closing the store: \(error)") }
            }
        }
        logger.notice("stopped cleanly")
        return 0
    }

    /// The first udev enumeration: every tagged device not already bound by path.
    static func discoverReceivers(gateway: Gateway) {
        do {
            for dev in try Udev.enumerateReceivers() { Hotplug.adopt(dev, gateway: gateway) }
        } catch {
            gateway.logger.warning("udev enumeration failed: \(error)")
        }
    }

    static func fail(_ code: Int32, _ message: String) -> Int32 {
        FileHandle.standardError.write(Data("onekeyd: \(message)\n".utf8))
        return code
    }
}
