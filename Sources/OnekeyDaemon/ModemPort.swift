import Logging
import OnekeyCore
import OnekeyLinux

/// The second path (CONTRACT §11) on the gateway's event loop: the modem's AT port (`ModemLine`)
/// and the pure decisions (`SecondPath`). While the broker is unreachable for `after_s`, pages
/// still in the outbox go by SMS — each stored (`sms_outbox`) before it is handed to the modem and
/// deleted once the modem confirms it — and unacknowledged emergencies ring the paged members.
/// SMS replies act through the gateway's normal apply path. Owned by the gateway; loop thread only.
final class ModemPort {
    unowned let gateway: Gateway
    let settings: ModemSettings
    private(set) var secondPath: SecondPath
    /// The AT port: configured, or found by udev (`ONEKEY_DRIVER=modem`) when `[modem] path` is empty.
    private(set) var line: ModemLine?
    private var io: EventLoop.IO?
    private var tickTimer: EventLoop.Timer!
    private var reopenTimer: EventLoop.Timer!
    private var decideTimer: EventLoop.Timer!
    private var reopenBackoff = 1.0
    /// Monotonic ms since when the broker is unreachable; nil while connected.
    private var brokerDownSince: Int64?
    /// Outbox rows up to this seq were already shown to `decide` while the broker was down long enough.
    private var scannedThrough: Int64 = 0
    static let maxReopenSeconds = 30.0
    /// While the broker is down, undelivered pages and open alerts are looked at at least this often.
    static let decideEverySeconds = 5.0

    init(settings: ModemSettings, gateway: Gateway) throws {
        self.settings = settings
        self.gateway = gateway
        let c = gateway.config
        secondPath = SecondPath(settings: settings, members: c.members, timezone: c.gateway.timezone)
        brokerDownSince = ModemLine.monotonicMilliseconds()
        tickTimer = try gateway.loop.addTimer(priority: .deadline) { [unowned self] in line?.tick(); settle() }
        reopenTimer = try gateway.loop.addTimer() { [unowned self] in open() }
        decideTimer = try gateway.loop.addTimer() { [unowned self] in decide() }
    }

    /// Puts back what was decided before a restart, queues every unconfirmed SMS again, and opens
    /// the configured port (a udev-found one arrives through `adopt`).
    func start() {
        let pending: [OutgoingSMS]
        do {
            let saved = try gateway.store.secondPathState()
            secondPath.restore(smsKeys: saved.smsKeys, callKeys: saved.callKeys)
            pending = saved.pending
        } catch {
            gateway.logger.critical("cannot read the SMS outbox: \(error)")
            pending = []
        }
        for a in gateway.desk.openAlerts.values {
            for m in a.paged { secondPath.notePaged(member: m, alert: a.id, at: a.lastPressAt) }
        }
        if !pending.isEmpty { gateway.logger.notice("\(pending.count) SMS not confirmed before the restart: sending again") }
        pendingBeforeLine = pending
        if !settings.path.isEmpty { makeLine(settings.path) }
        decide()
    }

    private var pendingBeforeLine: [OutgoingSMS] = []

    /// A modem found by udev; used when no `[modem] path` is configured.
    func adopt(node: String) {
        guard settings.path.isEmpty, line == nil else { return }
        gateway.logger.notice("udev: found modem \(node)", metadata: ["port": "\(node)"])
        makeLine(node)
    }

    /// The line, with every SMS that waited for it queued.
    private func makeLine(_ path: String) {
        let l = ModemLine(path: path, baud: settings.baud, clock: ModemLine.monotonicMilliseconds) { [unowned self] in event($0) }
        line = l
        for sms in pendingBeforeLine { l.send(sms) }
        pendingBeforeLine = []
        open()
    }

    private func open() {
        guard let line, line.fd < 0 else { return }
        do {
            try line.open()
            io = try gateway.loop.addIO(fd: line.fd) { [unowned self] _ in
                self.line?.readable()
                settle()
            }
            reopenBackoff = 1
            settle()
        } catch {
            gateway.logLimited("modem-open", .warning, "cannot open the modem port \(line.path): \(error); retrying in \(Int(reopenBackoff)) s")
            line.close()
            scheduleReopen()
        }
    }

    private func scheduleReopen() {
        io?.cancel()
        io = nil
        reopenTimer.arm(afterSeconds: reopenBackoff)
        reopenBackoff = min(reopenBackoff * 2, Self.maxReopenSeconds)
    }

    /// After anything the line did: a lost port is reopened, the session's timer follows its deadline.
    private func settle() {
        guard let line else { return }
        if line.fd < 0 {
            tickTimer.disarm()
            if io != nil { scheduleReopen() }
            return
        }
        if let d = line.nextDeadline { tickTimer.arm(atMonotonicNanos: UInt64(max(d, 1)) * 1_000_000) } else { tickTimer.disarm() }
    }

    // MARK: Broker and desk

    func brokerConnected() {
        brokerDownSince = nil
        decideTimer.disarm()
    }

    func brokerLost() {
        if brokerDownSince == nil { brokerDownSince = ModemLine.monotonicMilliseconds() }
        decide()
    }

    /// Every stored outcome: pages are noted (replies act on the latest), closed alerts forgotten,
    /// and fresh pages go by SMS at once while the broker is down.
    func applied(_ outcome: DeskOutcome, at t: Timestamp) {
        for m in outcome.pageMessages {
            if let p = PageSummary(outboxKey: m.key, payload: m.payload) { secondPath.notePaged(member: p.member, alert: p.alert, at: t) }
        }
        for a in outcome.alerts where a.state.isClosed {
            secondPath.forget(alert: a.id)
            do { try gateway.store.forgetSecondPath(alert: a.id) } catch {
                gateway.logLimited("store-sms", .error, "cannot forget the second path's keys of \(a.id): \(error)")
            }
        }
        if brokerDownSince != nil && !outcome.pageMessages.isEmpty { decide() }
    }

    /// Undelivered pages and open alerts, looked at while the broker is down.
    func decide() {
        guard let since = brokerDownSince, !gateway.storeClosed else { return }
        let downMs = ModemLine.monotonicMilliseconds() - since
        let afterMs = Int64(settings.afterSeconds) * 1000
        if downMs < afterMs {
            decideTimer.arm(afterSeconds: Double(afterMs - downMs) / 1000 + 0.01)
            return
        }
        decideTimer.arm(afterSeconds: Self.decideEverySeconds)
        // Stored and held (a full disk) pages alike: the journal merges them in seq order.
        var undelivered: [PageSummary] = []
        while true {
            let rows = gateway.journal.pending(after: scannedThrough, limit: 1024)
            guard let last = rows.last else { break }
            scannedThrough = last.seq
            for r in rows where r.message.topic.hasSuffix("/pages") {
                if let p = PageSummary(outboxKey: r.message.key, payload: r.message.payload) { undelivered.append(p) }
            }
        }
        let decision = secondPath.decide(now: gateway.clock.now().wall, brokerUnreachableForMs: downMs, undelivered: undelivered,
                                         openAlerts: Array(gateway.desk.openAlerts.values))
        for n in decision.notes { gateway.log(n) }
        guard !decision.sms.isEmpty || !decision.calls.isEmpty else { return }
        do { try gateway.store.planSecondPath(sms: decision.sms, calls: decision.calls, at: gateway.clock.now().wall) } catch {
            gateway.counters.storeErrors += 1
            gateway.logLimited("store-sms", .critical, "could not store \(decision.sms.count) SMS: \(error); sending them anyway")
        }
        guard let line else {
            pendingBeforeLine += decision.sms.map(\.message)
            gateway.logLimited("modem-missing", .critical, "no modem found: \(decision.sms.count) SMS and \(decision.calls.count) call(s) wait for one")
            return
        }
        for s in decision.sms { line.send(s.message) }
        for c in decision.calls { line.call(c.request) }
        settle()
    }

    // MARK: The modem's events

    private func event(_ e: ModemEvent) {
        switch e {
        case .smsSent(let id, _):
            gateway.logger.notice("SMS \(id) sent")
            if id.hasPrefix("sms:") {
                do { try gateway.store.smsConfirmed(id: id) } catch {
                    gateway.logLimited("store-sms", .error, "cannot delete confirmed SMS \(id): \(error) (it may be sent again after a restart)")
                }
            }
        case .smsFailed(let id, let error, let retry):
            gateway.logLimited("modem-sms-failed", .warning, "SMS \(id) not sent: \(error); retrying in \(retry / 1000) s")
        case .received(let sender, let text):
            received(from: sender, text: text)
        case .callPlaced(let id):
            gateway.logger.notice("ringing: \(id)")
        case .callEnded(let id, let result):
            gateway.logger.notice("call \(id) ended: \(result)")
        case .callFailed(let id, let error):
            gateway.logLimited("modem-call-failed", .error, "call \(id) failed: \(error)")
        case .stateChanged(let state):
            gateway.logLimited("modem-state:\(state.rawValue)", state == .ready ? .notice : .warning, "modem \(line?.path ?? ""): \(state.rawValue)")
            gateway.summaryChanged()
        case .note(let level, let text):
            gateway.logLimited("modem-note:\(text.prefix(24))", level.loggerLevel, text)
        }
    }

    /// An SMS from a member: `1`/`2`/`3` act like an MQTT ack (same rules), anything else is explained.
    private func received(from sender: String, text: String) {
        let now = gateway.clock.now()
        switch secondPath.reply(from: sender, text: text, at: now.wall) {
        case .act(let action, let member, let alert, let number):
            var refused: ActionError?
            do throws(ActionError) { gateway.apply(try gateway.desk.act(action, member: member, alert: alert, note: nil, source: .mqtt, at: now)) } catch {
                refused = error
                gateway.counters.rejectedActions += 1
                gateway.logLimited("rejected-action:\(member)", .warning, "rejected SMS \(action.rawValue) from \(member): \(error)",
                                   metadata: ["member": "\(member)", "alert_id": "\(alert)"])
            }
            if refused == nil { gateway.logger.notice("SMS \(action.rawValue) from \(member)", metadata: ["member": "\(member)", "alert_id": "\(alert)"]) }
            line?.send(SecondPath.answer(to: action, alert: alert, member: member, number: number, error: refused, at: now.wall))
        case .explain(let sms, _):
            line?.send(sms)
        case .ignored(let note):
            if let note { gateway.log(note) }  // SecondPath already limits these per window
        }
        settle()
    }

    // MARK: Status

    var status: ModemStatus { line?.session.status ?? ModemStatus(configured: true, path: settings.path) }

    /// A changed members list (phones) after a reload; what was decided and paged carries over.
    func reconfigure(_ new: GatewayConfig) {
        if new.modem != settings { gateway.logger.warning("[modem] changes take effect at the next restart") }
        var fresh = SecondPath(settings: settings, members: new.members, timezone: new.gateway.timezone)
        fresh.restore(smsKeys: secondPath.smsDecided, callKeys: secondPath.callsDecided)
        for (m, last) in secondPath.lastPaged { fresh.notePaged(member: m, alert: last.alert, at: last.at) }
        secondPath = fresh
    }
}

extension DeskNote.Level {
    var loggerLevel: Logger.Level {
        switch self {
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        case .critical: .critical
        }
    }
}
