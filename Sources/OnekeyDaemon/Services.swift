import Foundation
import Glibc
import Logging
import OnekeyCore
import OnekeyLinux

/// Everything around the gateway on the event loop: the broker link, ports, udev, the control
/// socket, signals and the service manager (CONTRACT §9), and the order they start and stop in.
final class Runtime {
    let gateway: Gateway
    let control: ControlServer
    private var hotplug: Hotplug?
    private var link: MQTTLink?
    private var signals: [EventLoop.Signal] = []
    private var shutdownDeadline: EventLoop.Timer?
    private var shuttingDown = false
    var loop: EventLoop { gateway.loop }
    var logger: Logger { gateway.logger }

    init(gateway: Gateway) {
        self.gateway = gateway
        control = ControlServer(path: gateway.config.gateway.controlSocket, gateway: gateway)
    }

    /// Everything READY=1 promises: the store is open (done), the configured ports are opened,
    /// the first udev enumeration is done, the control socket listens and the stop/reload
    /// signals are handled. Throws when the control socket cannot listen.
    func start() throws {
        // Signal sources first: a SIGHUP right after READY must find its handler.
        signals.append(try loop.addSignal(SIGTERM) { [unowned self] in shutdown("SIGTERM") })
        signals.append(try loop.addSignal(SIGINT) { [unowned self] in shutdown("SIGINT") })
        signals.append(try loop.addSignal(SIGHUP) { [unowned self] in
            logger.notice("SIGHUP: reloading the configuration")
            gateway.reload { _ in }  // a refusal is logged by reload itself
        })
        for p in gateway.config.ports {
            let reader = PortReader(config: p, gateway: gateway)
            gateway.ports[p.path] = reader
            reader.open()
        }
        // Watch for hotplug first, then enumerate, so nothing slips in between.
        do {
            let h = try Hotplug(gateway: gateway)
            try h.start()
            hotplug = h
        } catch {
            logger.warning("udev monitor unavailable, receivers plugged in later need a restart: \(error)")
        }
        do {
            if let settings = gateway.config.modem {
                let port = try ModemPort(settings: settings, gateway: gateway)
                gateway.modem = port
                port.start()
            }
            for dev in try Udev.enumerateReceivers() { Hotplug.adopt(dev, gateway: gateway) }
        } catch {
            logger.warning("udev enumeration failed: \(error)")
        }
        try control.start()
        // Supervised devices' silence timers start; steps that fell due while the daemon was
        // down fire now, once.
        gateway.desk.startSupervision(at: gateway.clock.now())
        gateway.apply(gateway.desk.fireDueSteps(at: gateway.clock.now()))
        gateway.rearmEscalation()
        if !gateway.desk.openAlerts.isEmpty {
            logger.notice("resuming \(gateway.desk.openAlerts.count) open alert(s) from the store")
        }
        try startLink()
        gateway.relink = { [unowned self] in
            link?.stop(final: nil) { }  // closes at once; the old link is released below
            do { try startLink() } catch { logger.critical("cannot start the broker link: \(error)") }
        }
        // Start-up is over: its garbage (the store's rows, the desk's indexes being built, udev)
        // is freed, and the code that parsed, migrated and set up is mapped but will not run
        // again. Hand both back before READY, so what is resident from READY on is what runs.
        // (What made the district's heap shrink was `ConfigLoader.detached`; the heap trim alone
        // measured no change.)
        gateway.releaseIdleMemory()
        ServiceManager.notify("READY=1\nSTATUS=\(gateway.summary())")
        // After READY: sd-event sends a first WATCHDOG=1 at once, then one per half interval
        // from the loop itself, so a wedged loop stops the pings.
        if loop.enableWatchdog() { logger.info("watchdog: the event loop pings the service manager") }
        logger.notice("onekeyd \(OnekeyVersion.string) ready: \(gateway.summary())")
    }

    private func startLink() throws {
        let c = gateway.config
        let topics = Topics(prefix: c.mqtt.topicPrefix, gateway: c.gateway.id)
        let endpoint = MQTTEndpoint(host: c.mqtt.host, port: c.mqtt.port, clientID: "onekeyd-\(c.gateway.id)",
                                    keepaliveSeconds: c.mqtt.keepaliveSeconds, tls: c.mqtt.tls, caFile: c.mqtt.caFile,
                                    username: c.mqtt.username, passwordFile: c.mqtt.passwordFile, willTopic: topics.status,
                                    willPayload: Payloads.status(online: false, version: OnekeyVersion.string, since: gateway.startedAt).bytes)
        let l = try MQTTLink(endpoint: endpoint, subscriptions: [topics.acksFilter], loop: loop) { [unowned gateway] event in
            gateway.linkEvent(event)
        }
        link = l
        gateway.attach(l)
        l.start()
    }

    /// Stop reading input, give the outbox up to 3 s to drain, publish the retained `offline`
    /// status, disconnect, leave the loop. A second signal during this leaves at once.
    private func shutdown(_ why: String) {
        if shuttingDown { logger.warning("\(why) again: stopping now"); loop.exit(0); return }
        shuttingDown = true
        ServiceManager.notify("STOPPING=1\nSTATUS=stopping")
        logger.notice("stopping (\(why))")
        control.stop()
        hotplug?.stop()
        for p in gateway.ports.values { p.stop() }
        logger.info("stopped reading ports")
        shutdownDeadline = try? loop.addTimer() { [unowned self] in closeLink() }
        shutdownDeadline?.arm(afterSeconds: 3)
        gateway.onOutboxIdle = { [unowned self] in
            if gateway.outboxDepth == 0 || !gateway.connected { closeLink() }
        }
        gateway.onOutboxIdle?()
    }

    private func closeLink() {
        gateway.onOutboxIdle = nil
        shutdownDeadline?.cancel()
        shutdownDeadline = nil
        gateway.stopping = true
        let c = gateway.config
        let offline = Payloads.status(online: false, version: OnekeyVersion.string, since: gateway.startedAt).bytes
        guard let link else { loop.exit(0); return }
        link.stop(final: (Topics(prefix: c.mqtt.topicPrefix, gateway: c.gateway.id).status, offline)) { [unowned self] in
            logger.info("broker link closed")
            gateway.flushAcked()
            loop.exit(0)
        }
    }
}
