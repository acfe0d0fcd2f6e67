import Foundation
import OnekeyCore
import OnekeyLinux

extension Gateway {
    /// Re-reads the configuration file (SIGHUP, `onekeyctl reload`): parsed and validated off
    /// the loop, then swapped in on the loop in one step. A bad file changes nothing and the
    /// error is passed to `done`; open alerts, their schedules and paged members carry over.
    /// `done` runs once the new configuration is in force (or refused).
    func reload(_ done: @escaping (Result<Void, ConfigError>) -> Void) {
        ServiceManager.notify("RELOADING=1\nMONOTONIC_USEC=\(monotonicNanos() / 1000)")
        let path = config.path
        offload.run({ .config(Result { () throws(ConfigError) in AlertDesk.prepare(try ConfigFile.load(path: path)) }) }) { [unowned self] result in
            defer { ServiceManager.notify("READY=1\nSTATUS=\(summary())") }
            guard case .config(let parsed) = result else { return }
            switch parsed {
            case .failure(let error):
                logger.error("reload refused, keeping the running configuration: \(error)")
                done(.failure(error))
            case .success(let prepared):
                adopt(prepared)
                releaseIdleMemory()  // the old configuration and the parse are freed
                done(.success(()))
            }
        }
    }

    /// Puts a validated configuration in force.
    private func adopt(_ prepared: AlertDesk.PreparedConfig) {
        let old = config
        let new = prepared.config
        desk.reconfigure(prepared)
        modem?.reconfigure(new)

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
