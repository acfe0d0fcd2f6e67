import Foundation
import OnekeyCore
import OnekeyLinux

/// Reads and validates the configuration file; the error names FILE:LINE.
public enum ConfigFile {
    public static let defaultPath = "/etc/onekeyd/onekeyd.toml"

    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> GatewayConfig {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            throw ConfigError(file: path, line: 0, message: "cannot read the configuration file: \(reason)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: 0, message: "the configuration file is not UTF-8")
        }
        return try ConfigLoader.parse(text, path: path, environment: environment)
    }
}

extension Gateway {
    /// Re-reads the configuration file (SIGHUP, `onekeyctl reload`). A bad file changes nothing
    /// and the error is returned; open alerts, their schedules and paged members carry over.
    public func reload() throws(ConfigError) {
        dispatchPrecondition(condition: .onQueue(queue))
        let new: GatewayConfig
        do { new = try ConfigFile.load(path: config.path) } catch {
            logger.error("reload refused, keeping the running configuration: \(error)")
            throw error
        }
        let old = config
        ServiceManager.notify("RELOADING=1\nMONOTONIC_USEC=\(monotonicNanos() / 1000)")
        defer { ServiceManager.notify("READY=1") }
        desk.reconfigure(new)

        // Ports bound by path: stop the ones removed or changed (udev-found ports, line 0, stay).
        func sameLine(_ a: PortConfig, _ b: PortConfig) -> Bool {
            a.path == b.path && a.driver == b.driver && a.baud == b.baud && a.parity == b.parity && a.dataBits == b.dataBits
        }
        for (path, reader) in ports where reader.config.line > 0 && !new.ports.contains(where: { sameLine($0, reader.config) }) {
            reader.stop()
            ports[path] = nil
            logger.notice("port \(path) removed from the configuration")
        }
        for p in new.ports where ports[p.path] == nil {
            let reader = PortReader(config: p, gateway: self)
            ports[p.path] = reader
            reader.open()
        }
        if old.mqtt != new.mqtt || old.gateway.id != new.gateway.id {
            logger.notice("broker settings changed; reconnecting")
            relink?()
        }
        if old.gateway.controlSocket != new.gateway.controlSocket || old.gateway.stateDir != new.gateway.stateDir {
            logger.warning("state_dir and control_socket changes take effect at the next restart")
        }
        logger.notice("configuration reloaded from \(new.path): \(new.devices.count) device(s), \(new.grids.count) grid(s), \(new.members.count) member(s)")
        rearmEscalation()
        summaryChanged()
    }
}
