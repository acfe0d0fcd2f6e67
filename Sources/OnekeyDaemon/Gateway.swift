import Foundation
import Glibc
import Logging
import OnekeyCore
import OnekeyLinux

public enum OnekeyVersion {
    public static let string = "0.1.0"
}

/// The running gateway: the alarm desk, the store and the MQTT link, owned by the event loop's
/// thread. Ports, the broker link, the control socket and the escalation timer all call in from
/// loop handlers, so every decision is made in order, one at a time, and stored before it is
/// published. Not `Sendable`: the compiler keeps it on that thread.
public final class Gateway {
    let loop: EventLoop
    let logger: Logger
    let clock: any GatewayClock
    let store: Store
    /// The store, or memory while the store cannot write (CONTRACT §10).
    let journal: Journal
    public internal(set) var desk: AlertDesk
    public var config: GatewayConfig { desk.config }
    let startedAt: Timestamp

    // Broker link.
    var link: MQTTLink?
    private var linkGeneration = -1
    public private(set) var connected = false
    var lastLinkError: String?
    private var failuresSinceConnect = 0
    /// Message id → outbox seq of what the current connection has in flight.
    private var inflight: [Int32: Int64] = [:]
    private var sentThrough: Int64 = 0
    /// The greatest outbox seq known to be stored, when known: equal to `sentThrough` means
    /// nothing waits in the store, so a fresh commit's rows are published without reading back.
    private var outboxTail: Int64?
    private var acked: [Int64] = []
    private var flushAckedSoon: EventLoop.Timer!
    /// Messages not yet delivered to the broker, stored or held (no query).
    public var outboxDepth: Int { journal.depth }
    static let window = 256
    static let ackFlushDelay = 0.2

    // Ports and counters.
    var ports: [String: PortReader] = [:]
    public internal(set) var counters = Counters()
    /// How late the escalation timer woke after the earliest deadline (wall clock, µs).
    var timerLateness = LatenessStats()
    private var escalationTimer: EventLoop.Timer!
    /// The escalation timer's deadline (CLOCK_MONOTONIC nanoseconds).
    private(set) var escalationDue: UInt64?
    /// Set at shutdown, so the final disconnect is not reported as a fault.
    var stopping = false
    /// Set once the store is closed at exit: late events are dropped.
    var storeClosed = false
    private var lastSummary = ""
    private var statusTimer: EventLoop.Timer!
    /// Checkpoints the WAL once a wake-up's pages are out (`Store.checkpointIfDue`).
    private var checkpointSoon: EventLoop.Timer!
    /// Every repeated log line goes through here (CONTRACT §8: no client floods the log).
    var logLimiter = LogLimiter(intervalSeconds: 60)
    private var housekeeping: EventLoop.Timer!
    /// Writes what the journal holds in memory once the store works again.
    private var storeRetry: EventLoop.Timer!
    /// Prunes old events and closed alerts in small batches (CONTRACT §3 `keep_days`).
    private var retention: EventLoop.Timer!
    /// Replaces the broker link after its settings changed (set by the runtime).
    var relink: (() -> Void)?
    /// Called when the outbox drains or the link drops (shutdown waits on it).
    var onOutboxIdle: (() -> Void)?
    /// Config-sized work off the loop (control queries, reload parsing).
    let offload: Offload
    /// The second path (SMS and calls through a modem), when `[modem]` is configured.
    var modem: ModemPort?

    public struct Counters: Sendable {
        public var frames = 0
        public var garbageBytes = 0
        public var repeats = 0
        public var pages = 0
        public var published = 0
        public var rejectedActions = 0
        public var storeErrors = 0
        public var commits = 0
    }

    public init(config: GatewayConfig, store: Store, loop: EventLoop, clock: any GatewayClock = SystemClock(), logger: Logger) throws {
        self.store = store
        self.loop = loop
        self.clock = clock
        self.logger = logger
        startedAt = clock.now().wall
        let now = clock.now()
        // Repeats of a press stored just before a restart are still repeats (CONTRACT §5).
        let recent = try store.recentEvents(since: now.wall.adding(milliseconds: -Int64(max(config.dedup.repeatWindowMs, 1))))
        desk = AlertDesk(config: config, openAlerts: try store.openAlerts(), devices: try store.devices(), issuedIDs: try store.greatestIDs(),
                         recentEvents: recent, at: now)
        journal = try Journal(store: store)
        for a in try store.alerts(includeClosed: true, limit: 4096).reversed() where a.state.isClosed { desk.rememberClosed(a) }
        offload = try Offload(loop: loop)
        escalationTimer = try loop.addTimer(priority: .deadline) { [unowned self] in escalationFired() }
        flushAckedSoon = try loop.addTimer(priority: .batch) { [unowned self] in flushAcked() }
        housekeeping = try loop.addTimer() { [unowned self] in housekeep() }
        housekeeping.arm(afterSeconds: 10)
        storeRetry = try loop.addTimer() { [unowned self] in retryStore() }
        retention = try loop.addTimer(priority: .batch) { [unowned self] in prune() }
        retention.arm(afterSeconds: Self.firstPruneDelay)
        statusTimer = try loop.addTimer(priority: .batch) { [unowned self] in sendStatus() }
        checkpointSoon = try loop.addTimer(priority: .batch) { [unowned self] in checkpointWAL() }
    }

    /// Called after anything committed: the checkpoint runs in a later turn of the loop, after
    /// this wake-up's pages are on the broker's socket.
    private func checkpointWhenDue() {
        if store.checkpointDue && !checkpointSoon.armed { checkpointSoon.arm(afterSeconds: 0) }
    }

    private func checkpointWAL() {
        guard !storeClosed else { return }
        do { try store.checkpointIfDue() } catch { logLimited("store-checkpoint", .error, "store: checkpoint failed: \(Journal.describe(error))") }
    }

    static let firstPruneDelay = 5.0
    static let storeRetryInterval = 5.0

    // MARK: Store faults and retention

    /// While the journal holds outcomes in memory: try the store again (every 5 s while it
    /// fails; at once again while a big backlog is being written).
    private func retryStore() {
        if let line = journal.retry() { logger.critical("\(line)") }
        checkpointWhenDue()
        if journal.fault == nil && journal.heldMessages + journal.heldEvents > 0 {
            storeRetry.arm(afterSeconds: 0.01)
        } else if journal.fault != nil {
            storeRetry.arm(afterSeconds: Self.storeRetryInterval)
        }
        summaryChanged()
    }

    /// One small batch of retention at a time, off the alarm path (`.batch` priority): again
    /// soon while there is more to prune, hourly once caught up.
    private func prune() {
        guard !storeClosed else { return }
        guard journal.fault == nil else { retention.arm(afterSeconds: 60); return }
        do {
            let n = try store.pruneStep(now: clock.now().wall, keepDays: config.store.keepDays)
            if n > 0 { logger.debug("retention: pruned \(n) old row(s)") }
            if n == 0 { releaseIdleMemory() }  // hourly
            retention.arm(afterSeconds: n > 0 ? 0.2 : 3600)
        } catch {
            logLimited("store-prune", .error, "retention: \(error)")
            retention.arm(afterSeconds: 600)
        }
    }

    /// Hands free heap pages back to the kernel (`malloc_trim`) and unmaps code pages mapped but
    /// not running (`CodePages.release`), only while no job runs on the worker: trimming walks
    /// every arena under its lock, and stalled the loop behind a parse.
    func releaseIdleMemory() {
        guard offload.inProgress == 0 else { return }
        ConfigLoader.releaseFreedMemory()
        CodePages.release()
    }

    // MARK: Logging, rate-limited

    /// Logs `message` unless its class (`key`) was logged within the limiter's interval; the
    /// next line admitted says how many were suppressed.
    func logLimited(_ key: String, _ level: Logger.Level, _ message: @autoclosure () -> String, metadata: Logger.Metadata? = nil) {
        guard let suppressed = logLimiter.admit(key) else { return }
        logger.log(level: level, "\(message())\(LogLimiter.tail(suppressed))", metadata: metadata)
    }

    private func housekeep() {
        for (key, n) in logLimiter.overdue() {
            logger.notice("\(n) more line(s) of class \"\(key)\" suppressed in the last minute")
        }
        housekeeping.arm(afterSeconds: 10)
    }

    // MARK: Input from ports

    /// Everything one port delivered in one wake-up: decided frame by frame, committed in ONE
    /// transaction (group commit), then published, and only then answered (a Sur-Gard ACK
    /// promises durable storage).
    func received(_ bytes: [UInt8], from port: PortReader) {
        let result = port.decoder.feed(bytes)
        if result.skippedBytes > 0 {
            counters.garbageBytes += result.skippedBytes
            port.noteGarbage(result.skippedBytes)
        }
        var batch = DeskOutcome()
        var replies: [[UInt8]] = []
        let now = clock.now()
        for item in result.items {
            switch item {
            case .frame(let frame):
                counters.frames += 1
                batch.merge(desk.handle(frame, at: now))
            case .reply(let bytes):
                replies.append(bytes)
            }
        }
        let stored = apply(batch)
        // An ACK confirms durable storage; if the store failed, NAK so the receiver resends.
        for r in replies { port.reply(r == SurGardDecoder.ack && !stored ? SurGardDecoder.nak : r) }
    }

    /// Stores an outcome (one transaction), logs it, and hands its messages to the broker.
    /// Returns false when the store refused it.
    @discardableResult
    func apply(_ outcome: DeskOutcome) -> Bool {
        counters.repeats += outcome.repeats
        // Logged on the way out, once the pages are on the broker's socket: a line costs a write
        // (journald's stream) that a page need not wait for.
        defer { for note in outcome.notes { log(note) } }
        // Nothing to write (a repeat folded into an earlier event, a heartbeat): "stored" only if
        // nothing is held in memory — a receiver's resend of a held message must not be ACKed.
        guard outcome.changesState, !storeClosed else { return !journal.isHolding }
        let caughtUp = outboxTail != nil && outboxTail == sentThrough
        // Stored durably, or held in memory in order while the store cannot write: either way
        // the messages go out in order, and a page is never dropped because the store failed.
        let recorded = journal.record(outcome, at: clock.now().wall)
        if let line = recorded.log { logger.critical("\(line)") }
        if recorded.durable {
            counters.commits += 1
        } else {
            counters.storeErrors += 1
            if !storeRetry.armed { storeRetry.arm(afterSeconds: Self.storeRetryInterval) }
        }
        if let last = recorded.messages.last?.seq, outboxTail != nil { outboxTail = last }
        if caughtUp { send(recorded.messages) } else { pump() }
        checkpointWhenDue()
        store.prepareNextCommit()
        counters.pages += outcome.pages
        modem?.applied(outcome, at: clock.now().wall)
        rearmEscalation()
        summaryChanged()
        return recorded.durable
    }

    func log(_ note: DeskNote) {
        var meta: Logger.Metadata = [:]
        if let a = note.alert { meta["alert_id"] = "\(a)" }
        if let d = note.device { meta["device"] = "\(d)" }
        if let k = note.kind { meta["event_kind"] = "\(k.rawValue)" }
        if let m = note.member { meta["member"] = "\(m)" }
        logger.log(level: note.level.loggerLevel, "\(note.message)", metadata: meta)
    }

    // MARK: Escalation timer

    /// One monotonic timer for all alerts and supervision, armed for the earliest deadline only.
    func rearmEscalation() {
        guard let next = desk.nextDeadline() else {
            escalationTimer.disarm()
            escalationDue = nil
            return
        }
        escalationDue = next
        escalationTimer.arm(atMonotonicNanos: next)
    }

    /// Steps due within this of the one that woke the loop are fired with it, in one commit.
    static let stepCoalescingNanos: UInt64 = 10_000_000

    private func escalationFired() {
        let now = clock.now()
        if let due = escalationDue { timerLateness.add(microseconds: (Int64(now.monotonicNanos) - Int64(due)) / 1000) }
        apply(desk.fireDueSteps(at: now, coalescingNanos: Self.stepCoalescingNanos))
        rearmEscalation()
    }

    // MARK: Broker

    func attach(_ link: MQTTLink) { self.link = link }

    func linkEvent(_ event: MQTTLink.Event) {
        switch event {
        case .connected(let gen):
            linkGeneration = gen
            connected = true
            inflight = [:]
            sentThrough = 0
            outboxTail = nil
            lastLinkError = nil
            logger.notice("connected to broker \(config.mqtt.host):\(config.mqtt.port)\(failuresSinceConnect > 0 ? " after \(failuresSinceConnect) failed attempt(s)" : "")")
            failuresSinceConnect = 0
            let status = Payloads.status(online: true, version: OnekeyVersion.string, since: startedAt).bytes
            _ = link?.publish(topic: desk.topics.status, payload: status, retain: true)
            // The broker may have lost its retained copies: send current state again, after what is
            // queued — unless a snapshot is still queued (restarts faster than the outbox drains
            // piled one per start in front of new pages: 58,464 messages after 150 kills).
            if journal.fault != nil || !((try? store.snapshotWaiting()) ?? false) {
                apply(desk.retainedSnapshot(at: clock.now().wall))
            }
            pump()
            modem?.brokerConnected()
        case .disconnected(let gen, let reason):
            guard gen == linkGeneration else { return }
            connected = false
            inflight = [:]
            lastLinkError = reason
            modem?.brokerLost()
            onOutboxIdle?()
            if stopping { logger.info("disconnected from the broker"); break }
            logger.warning("lost the broker connection: \(reason); presses are stored and will be sent on reconnect")
        case .connectFailed(let reason, let retry):
            failuresSinceConnect += 1
            lastLinkError = reason
            logLimited("broker-connect", .warning, "cannot reach the broker (\(failuresSinceConnect) attempt(s)): \(reason); retrying in \(String(format: "%.1f", retry)) s")
        case .published(let gen, let mid):
            guard gen == linkGeneration, let seq = inflight.removeValue(forKey: mid) else { return }
            counters.published += 1
            acked.append(seq)
            // Deletes wait a little and go in one statement: off the path of the next press,
            // one write for a whole burst of PUBACKs.
            if acked.count >= Self.window { flushAcked() } else if !flushAckedSoon.armed { flushAckedSoon.arm(afterSeconds: Self.ackFlushDelay) }
        case .message(let topic, let payload):
            memberAction(topic: topic, payload: payload)
        case .log(_, let text):
            let isTLS = text.localizedCaseInsensitiveContains("tls") || text.localizedCaseInsensitiveContains("ssl") || text.localizedCaseInsensitiveContains("certificate")
            if isTLS {
                logLimited("broker-tls", .error, "broker TLS: \(text)")
            } else {
                logger.debug("libmosquitto: \(text)")
            }
        }
        summaryChanged()
    }

    /// Deletes PUBACKed messages in one statement, at most every `ackFlushDelay` (or per full
    /// window); needs no sync of its own: a lost delete only resends with the same key.
    func flushAcked() {
        flushAckedSoon.disarm()
        guard !storeClosed, !acked.isEmpty else { return }
        let seqs = acked
        acked = []
        journal.delivered(seqs)
        if outboxTail == nil || outboxTail != sentThrough { pump() }
        if outboxDepth == 0 || inflight.isEmpty { onOutboxIdle?() }
        summaryChanged()
    }

    /// Publishes freshly committed rows straight away (nothing older waits in the store).
    private func send(_ rows: [OutboxRow]) {
        guard connected, let link, !rows.isEmpty else { return }
        if inflight.count + rows.count > Self.window { pump(); return }
        for row in rows {
            guard let (gen, mid) = link.publish(topic: row.message.topic, payload: row.message.payload, retain: row.message.retain),
                  gen == linkGeneration else {
                outboxTail = nil  // the rest is read back by the next pump
                return
            }
            inflight[mid] = row.seq
            sentThrough = row.seq
        }
    }

    /// Hands outbox messages to the connection, in order, keeping at most `window` in flight.
    func pump() {
        guard connected, let link, !storeClosed else { return }
        while inflight.count < Self.window {
            let rows = journal.pending(after: sentThrough, limit: Self.window - inflight.count)
            for line in store.takeDamage() { logger.critical("store: \(line)") }
            if rows.isEmpty { outboxTail = sentThrough; return }
            for row in rows {
                guard let (gen, mid) = link.publish(topic: row.message.topic, payload: row.message.payload, retain: row.message.retain) else {
                    if link.isConnected { logLimited("publish-refused", .error, "libmosquitto refused outbox message \(row.seq) on \(row.message.topic); retrying") }
                    return
                }
                guard gen == linkGeneration else { return }
                inflight[mid] = row.seq
                sentThrough = row.seq
            }
        }
    }

    public var outboxInFlight: Int { inflight.count }

    // MARK: Responders' actions over MQTT

    func memberAction(topic: String, payload: [UInt8]) {
        guard let member = desk.topics.ackMember(topic: topic) else { return }
        let now = clock.now()
        func reject(_ why: String, alert: String? = nil) {
            counters.rejectedActions += 1
            var meta: Logger.Metadata = ["member": "\(member)"]
            if let alert { meta["alert_id"] = "\(alert)" }
            logLimited("rejected-action", .warning, "rejected action from \(member): \(why)", metadata: meta)
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
        let openPorts = ports.values.filter(\.isOpen).count
        let modemState = modem.map { ", modem \($0.status.state.rawValue)" } ?? ""
        return "\(connected ? "broker connected" : "broker unreachable"), \(desk.openAlerts.count) open alert(s), outbox \(outboxDepth), ports \(openPorts)/\(ports.count) open\(modemState)"
            + (journal.fault.map { ", STORE FAULT: \($0)" } ?? "")
    }

    /// The summary for `systemctl status` is sent at most every `statusDelay`, off the path of a
    /// press (composing it and sd_notify's socket cost ten syscalls).
    func summaryChanged() {
        if !statusTimer.armed { statusTimer.arm(afterSeconds: Self.statusDelay) }
    }

    static let statusDelay = 0.2

    private func sendStatus() {
        let s = summary()
        if s != lastSummary { lastSummary = s; ServiceManager.notify("STATUS=\(s)") }
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
