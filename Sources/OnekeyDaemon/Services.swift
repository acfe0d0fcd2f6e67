import Dispatch
import Foundation
import Logging
import OnekeyCore
import OnekeyLinux
import ServiceLifecycle

/// The broker link as a service: connects in the background (the daemon runs with the broker
/// down); at shutdown waits briefly for the outbox to drain, then publishes the retained
/// `offline` status and disconnects.
final class BrokerService: Service, @unchecked Sendable {
    let gateway: Gateway
    private var link: MQTTLink?

    init(gateway: Gateway) { self.gateway = gateway }

    static func makeLink(for gateway: Gateway) -> MQTTLink {
        let c = gateway.config
        let topics = Topics(prefix: c.mqtt.topicPrefix, gateway: c.gateway.id)
        let endpoint = MQTTEndpoint(host: c.mqtt.host, port: c.mqtt.port, clientID: "onekeyd-\(c.gateway.id)",
                                    keepaliveSeconds: c.mqtt.keepaliveSeconds, tls: c.mqtt.tls, caFile: c.mqtt.caFile,
                                    username: c.mqtt.username, passwordFile: c.mqtt.passwordFile, willTopic: topics.status,
                                    willPayload: Payloads.status(online: false, version: OnekeyVersion.string, since: gateway.startedAt).bytes)
        return MQTTLink(endpoint: endpoint, subscriptions: [topics.acksFilter], queue: gateway.queue) { [weak gateway] event in
            gateway?.linkEvent(event)
        }
    }

    func startLink() {
        let l = Self.makeLink(for: gateway)
        link = l
        gateway.attach(l)
        l.start()
    }

    func run() async throws {
        gateway.queue.sync {
            startLink()
            gateway.relink = { [weak self] in
                guard let self else { return }
                let old = link
                DispatchQueue.global().async { old?.stop(final: nil, timeout: 1) }
                startLink()
            }
        }
        try? await gracefulShutdown()
        await gateway.drainOutbox(timeout: 3)
        gateway.queue.sync { gateway.stopping = true }
        let c = gateway.config
        let offline = Payloads.status(online: false, version: OnekeyVersion.string, since: gateway.startedAt).bytes
        link?.stop(final: (Topics(prefix: c.mqtt.topicPrefix, gateway: c.gateway.id).status, offline))
        gateway.logger.info("broker link closed")
    }
}

/// Serial ports and the control socket: opened before READY, closed at shutdown (stop reading first).
final class InputService: Service, @unchecked Sendable {
    let gateway: Gateway
    let control: ControlServer
    let hotplug: Hotplug?

    init(gateway: Gateway, control: ControlServer, hotplug: Hotplug?) {
        self.gateway = gateway; self.control = control; self.hotplug = hotplug
    }

    func run() async throws {
        try? await gracefulShutdown()
        gateway.queue.sync {
            control.stop()
            hotplug?.stop()
            for p in gateway.ports.values { p.stop() }
            gateway.logger.info("stopped reading ports")
        }
    }
}

/// The service manager's view (CONTRACT §9): READY=1 once started, STATUS= kept current,
/// WATCHDOG=1 at half the interval only while the gateway queue answers and the store reads,
/// SIGHUP → reload, STOPPING=1 at shutdown.
final class SupervisorService: Service, @unchecked Sendable {
    let gateway: Gateway
    private let lock = NSLock()
    private var lastHeartbeat = monotonicNanos()
    private var timers: [DispatchSourceProtocol] = []

    init(gateway: Gateway) { self.gateway = gateway }

    func run() async throws {
        let q = DispatchQueue(label: "onekeyd.supervisor")
        gateway.queue.sync {
            gateway.onSummaryChange = { line in ServiceManager.notify("STATUS=\(line)") }
            ServiceManager.notify("READY=1\nSTATUS=\(gateway.summary())")
        }
        gateway.logger.notice("onekeyd \(OnekeyVersion.string) ready: \(gateway.queue.sync { gateway.summary() })")

        signal(SIGHUP, SIG_IGN)
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: gateway.queue)
        hup.setEventHandler { [gateway] in
            gateway.logger.notice("SIGHUP: reloading the configuration")
            try? gateway.reload()
        }
        hup.activate()
        timers.append(hup)

        if let interval = ServiceManager.watchdogInterval() {
            let half = max(0.05, interval / 2)
            let t = DispatchSource.makeTimerSource(queue: q)
            t.schedule(deadline: .now() + half, repeating: half)
            t.setEventHandler { [weak self] in
                guard let self else { return }
                // Ping only if the gateway queue answered the previous heartbeat in time.
                lock.lock()
                let alive = monotonicNanos() - lastHeartbeat < UInt64(interval * 1e9)
                lock.unlock()
                if alive { ServiceManager.notify("WATCHDOG=1") }
                gateway.queue.async { [weak self] in
                    guard let self else { return }
                    guard gateway.store.isHealthy() else { return }
                    lock.lock(); lastHeartbeat = monotonicNanos(); lock.unlock()
                }
            }
            t.activate()
            timers.append(t)
            gateway.logger.info("watchdog: pinging every \(half) s")
        }

        try? await gracefulShutdown()
        ServiceManager.notify("STOPPING=1\nSTATUS=stopping")
        gateway.logger.notice("stopping")
        for t in timers { t.cancel() }
    }
}
