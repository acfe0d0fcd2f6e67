import Dispatch
import Foundation
import Logging
import OnekeyCore
import OnekeyLinux

public enum OnekeyVersion {
    public static let string = "0.1.0"
}

/// The running gateway: the alarm desk, the store and the MQTT link, confined to one serial
/// queue (`queue`). Ports, the broker link, the control socket and the escalation timer all
/// deliver their input on that queue, so every decision is made in order, one at a time, and
/// stored before it is published.
public final class Gateway: @unchecked Sendable {
    public let queue = DispatchQueue(label: "onekeyd.gateway", qos: .userInteractive)
    let logger: Logger
    let clock: any GatewayClock
    let store: Store
    public internal(set) var desk: AlertDesk
    public var config: GatewayConfig { desk.config }
    let startedAt: Timestamp

    // Broker link (queue-confined).
    var link: MQTTLink?
    private var linkGeneration = -1
    public private(set) var connected = false
    var lastLinkError: String?
    private var failuresSinceConnect = 0
    /// Message id → outbox seq of what the current connection has in flight.
    private var inflight: [Int32: Int64] = [:]
    private var sentThrough: Int64 = 0
    private var acked: [Int64] = []
    private var flushScheduled = false
    /// Messages in the outbox (kept in memory so the summary costs no query).
    public private(set) var outboxDepth = 0
    static let window = 256

    // Ports and counters.
    var ports: [String: PortReader] = [:]
    public private(set) var counters = Counters()
    /// How late the escalation timer woke after the earliest deadline (wall clock, µs).
    var timerLateness = LatenessStats()
    private var escalationTimer: DispatchSourceTimer?
    /// Set at shutdown, so the final disconnect is not reported as a fault.
    var stopping = false
    /// Set once the store is closed at exit: late events are dropped.
    var storeClosed = false
    /// Replaces the broker link after its settings changed (set by the daemon).
    var relink: (() -> Void)?
    /// Called (on the queue) whenever the summary line may have changed.
    var onSummaryChange: (@Sendable (String) -> Void)?
    private var lastSummary = ""

    public struct Counters: Sendable {
        public var frames = 0
        public var garbageBytes = 0
        public var repeats = 0
        public var pages = 0
        public var published = 0
        public var rejectedActions = 0
        public var storeErrors = 0
    }

    public init(config: GatewayConfig, store: Store, clock: any GatewayClock = SystemClock(), logger: Logger) throws {
        self.store = store
        self.clock = clock
        self.logger = logger
        startedAt = clock.now().wall
        desk = AlertDesk(config: config, openAlerts: try store.openAlerts(), devices: try store.devices(), issuedIDs: try store.greatestIDs(), at: clock.now())
        outboxDepth = try store.outboxSummary().count
        for a in try store.alerts(includeClosed: true, limit: 4096).reversed() where a.state.isClosed { desk.rememberClosed(a) }
    }

    // MARK: Input from ports

    func received(_ bytes: [UInt8], from port: PortReader) {
        dispatchPrecondition(condition: .onQueue(queue))
        let result = port.decoder.feed(bytes)
        if result.skippedBytes > 0 {
            counters.garbageBytes += result.skippedBytes
            port.noteGarbage(result.skippedBytes)
        }
        var stored = true
        for item in result.items {
            switch item {
            case .frame(let frame):
                counters.frames += 1
                stored = apply(desk.handle(frame, at: clock.now()))
            case .reply(let bytes):
                // An ACK confirms durable storage; if the store failed, NAK so the receiver resends.
                port.reply(bytes == SurGardDecoder.ack && !stored ? SurGardDecoder.nak : bytes)
                stored = true
            }
        }
    }

    /// Stores an outcome (one transaction), logs it, and hands its messages to the broker.
    /// Returns false when the store refused it.
    @discardableResult
    func apply(_ outcome: DeskOutcome) -> Bool {
        dispatchPrecondition(condition: .onQueue(queue))
        counters.repeats += outcome.repeats
        guard outcome.changesState, !storeClosed else { return true }
        var stored = true
        do {
            outboxDepth += try store.commit(outcome, at: clock.now().wall).count
        } catch {
            stored = false
            counters.storeErrors += 1
            logger.critical("could not store \(outcome.events.count) event(s) and \(outcome.alerts.count) alert change(s): \(error); publishing without the outbox")
            for m in outcome.outbox { _ = link?.publish(topic: m.topic, payload: m.payload, retain: m.retain) }
        }
        counters.pages += outcome.pages
        for note in outcome.notes { log(note) }
        pump()
        rearmEscalation()
        summaryChanged()
        return stored
    }

    func log(_ note: DeskNote) {
        var meta: Logger.Metadata = [:]
        if let a = note.alert { meta["alert_id"] = "\(a)" }
        if let d = note.device { meta["device"] = "\(d)" }
        if let k = note.kind { meta["event_kind"] = "\(k.rawValue)" }
        if let m = note.member { meta["member"] = "\(m)" }
        let level: Logger.Level
        switch note.level {
        case .debug: level = .debug
        case .info: level = .info
        case .notice: level = .notice
        case .warning: level = .warning
        case .error: level = .error
        case .critical: level = .critical
        }
        logger.log(level: level, "\(note.message)", metadata: meta)
    }

    // MARK: Escalation timer

    /// One timer for all alerts, armed for the earliest deadline only.
    func rearmEscalation() {
        dispatchPrecondition(condition: .onQueue(queue))
        guard let next = desk.nextDeadline() else {
            escalationTimer?.cancel()
            escalationTimer = nil
            return
        }
        if escalationTimer == nil {
            let t = DispatchSource.makeTimerSource(flags: .strict, queue: queue)
            t.setEventHandler { [weak self] in
                guard let self else { return }
                let now = clock.now()
                if let due = desk.nextDeadline() {
                    timerLateness.add(microseconds: (Int64(now.monotonicNanos) - Int64(due)) / 1000)
                }
                let outcome = desk.fireDueSteps(at: now)
                apply(outcome)
                rearmEscalation()
            }
            t.activate()
            escalationTimer = t
        }
        let delayMs = max(0, (Int64(next) - Int64(clock.now().monotonicNanos)) / 1_000_000 + 1)
        escalationTimer?.schedule(deadline: .now() + .milliseconds(Int(delayMs)), leeway: .milliseconds(1))
    }

    // MARK: Broker

    func attach(_ link: MQTTLink) { self.link = link }

    func linkEvent(_ event: MQTTLink.Event) {
        dispatchPrecondition(condition: .onQueue(queue))
        switch event {
        case .connected(let gen):
            linkGeneration = gen
            connected = true
            inflight = [:]
            sentThrough = 0
            lastLinkError = nil
            logger.notice("connected to broker \(config.mqtt.host):\(config.mqtt.port)\(failuresSinceConnect > 0 ? " after \(failuresSinceConnect) failed attempt(s)" : "")")
            failuresSinceConnect = 0
            let status = Payloads.status(online: true, version: OnekeyVersion.string, since: startedAt).bytes
            _ = link?.publish(topic: desk.topics.status, payload: status, retain: true)
            // The broker may have lost its retained copies: send current state again, after what is queued.
            apply(desk.retainedSnapshot(at: clock.now().wall))
            pump()
        case .disconnected(let gen, let reason):
            guard gen == linkGeneration else { return }
            connected = false
            inflight = [:]
            lastLinkError = reason
            if stopping { logger.info("disconnected from the broker"); break }
            logger.warning("lost the broker connection: \(reason); presses are stored and will be sent on reconnect")
        case .connectFailed(let reason, let retry):
            failuresSinceConnect += 1
            lastLinkError = reason
            if failuresSinceConnect == 1 || failuresSinceConnect % 20 == 0 {
                logger.warning("cannot reach the broker (\(failuresSinceConnect) attempt(s)): \(reason); retrying in \(String(format: "%.1f", retry)) s")
            }
        case .published(let gen, let mid):
            guard gen == linkGeneration, let seq = inflight.removeValue(forKey: mid) else { return }
            counters.published += 1
            acked.append(seq)
            if !flushScheduled {
                flushScheduled = true
                queue.async { [self] in flushAcked() }
            }
        case .message(let topic, let payload):
            memberAction(topic: topic, payload: payload)
        case .log(_, let text):
            let isTLS = text.localizedCaseInsensitiveContains("tls") || text.localizedCaseInsensitiveContains("ssl") || text.localizedCaseInsensitiveContains("certificate")
            if isTLS && (failuresSinceConnect <= 1 || failuresSinceConnect % 20 == 0) {
                logger.error("broker TLS: \(text)")
            } else {
                logger.debug("libmosquitto: \(text)")
            }
        }
        summaryChanged()
    }

    /// Deletes PUBACKed messages in one transaction, then sends more.
    private func flushAcked() {
        flushScheduled = false
        guard !storeClosed else { return }
        let seqs = acked
        acked = []
        do {
            try store.deleteOutbox(seqs)
            outboxDepth -= seqs.count
        } catch {
            counters.storeErrors += 1
            logger.error("could not delete \(seqs.count) delivered message(s) from the outbox: \(error) (they will be sent again)")
        }
        pump()
        summaryChanged()
    }

    /// Hands outbox messages to the connection, in order, keeping at most `window` in flight.
    func pump() {
        dispatchPrecondition(condition: .onQueue(queue))
        guard connected, let link, !storeClosed else { return }
        while inflight.count < Self.window {
            let rows: [OutboxRow]
            do { rows = try store.outbox(after: sentThrough, limit: Self.window - inflight.count) } catch {
                logger.error("cannot read the outbox: \(error)")
                return
            }
            if rows.isEmpty { return }
            for row in rows {
                guard let (gen, mid) = link.publish(topic: row.message.topic, payload: row.message.payload, retain: row.message.retain) else {
                    if link.isConnected { logger.error("libmosquitto refused outbox message \(row.seq) on \(row.message.topic); retrying") }
                    return
                }
                guard gen == linkGeneration else { return }
                inflight[mid] = row.seq
                sentThrough = row.seq
            }
        }
    }

    public var outboxInFlight: Int { inflight.count }

    /// Waits (off the queue) until the outbox is empty or `timeout` passes; used at shutdown.
    func drainOutbox(timeout: Double) async {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            let (pending, isConnected) = queue.sync { (outboxDepth, connected) }
            if pending == 0 || !isConnected { return }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
    }

    // MARK: Responders' actions over MQTT

    func memberAction(topic: String, payload: [UInt8]) {
        guard let member = desk.topics.ackMember(topic: topic) else { return }
        let now = clock.now()
        func reject(_ why: String, alert: String? = nil) {
            counters.rejectedActions += 1
            var meta: Logger.Metadata = ["member": "\(member)"]
            if let alert { meta["alert_id"] = "\(alert)" }
            logger.warning("rejected action from \(member): \(why)", metadata: meta)
        }
        guard let body = try? JSON.parse(payload) else { return reject("payload is not JSON") }
        guard let alertID = body["alert"]?.stringValue else { return reject("no \"alert\" field") }
        guard let actionName = body["action"]?.stringValue, let action = MemberAction(rawValue: actionName) else {
            return reject("\"action\" must be ack, resolve or decline", alert: alertID)
        }
        let note = body["note"]?.stringValue
        do {
            apply(try desk.act(action, member: member, alert: alertID, note: note, source: .mqtt, at: now))
        } catch {
            reject("\(error)", alert: alertID)
        }
    }

    // MARK: Summary

    public func summary() -> String {
        let outbox = outboxDepth
        let openPorts = ports.values.filter(\.isOpen).count
        return "\(connected ? "broker connected" : "broker unreachable"), \(desk.openAlerts.count) open alert(s), outbox \(outbox), ports \(openPorts)/\(ports.count) open"
    }

    func summaryChanged() {
        guard let onSummaryChange else { return }
        let s = summary()
        if s != lastSummary { lastSummary = s; onSummaryChange(s) }
    }
}

/// The last 100,000 timer wake-ups' lateness, for `status` and the benchmark.
struct LatenessStats {
    private var samples: [Int64] = []
    private var next = 0

    mutating func add(microseconds: Int64) {
        if samples.count < 100_000 { samples.append(microseconds) } else { samples[next] = microseconds; next = (next + 1) % samples.count }
    }

    var json: JSON {
        guard !samples.isEmpty else { return .null }
        let s = samples.sorted()
        func p(_ q: Double) -> JSON { .double(Double(s[min(s.count - 1, Int(Double(s.count - 1) * q))]) / 1000) }
        return .object([("count", .int(Int64(s.count))), ("p50", p(0.5)), ("p99", p(0.99)), ("max", .double(Double(s.last!) / 1000))])
    }
}
