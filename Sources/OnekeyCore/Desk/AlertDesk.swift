/// The alarm desk: the gateway's decisions, with no I/O. Frames, timer ticks and responders'
/// actions come in; a `DeskOutcome` (what to store, what to publish, what to log) goes out.
///
/// Rules (CONTRACT §5, §6):
/// - repeats of a frame within `repeat_window_ms` are one press (leading edge acts);
/// - an emergency raises an alert, or joins the device's open alert younger than `press_merge_s`
///   (press_count + 1, everyone already paged is paged again: `pressed_again`);
/// - `cancel` closes the device's open alert as `cancelled` and tells everyone paged;
/// - a trouble pages the grid's primary once, never escalates, and closes when the device
///   is heard normally again;
/// - the ladder: step k of the policy fires at its stored deadline; a step that resolves to
///   nobody is a roster gap and the next step fires at once; `ack` stops the ladder,
///   `decline` fires the next step now, `resolve` closes.
public struct AlertDesk: Sendable {
    public private(set) var config: GatewayConfig
    public private(set) var roster: Roster
    public private(set) var topics: Topics
    private var dedup: PressDeduplicator
    private var ids = IdentifierSource()
    /// Alerts not yet closed (open or acked), by id.
    public private(set) var openAlerts: [String: Alert] = [:]
    public private(set) var devices: [String: DeviceState] = [:]
    /// Recently closed alerts, so a late action gets "already resolved", not "unknown".
    private var recentlyClosed: [String: AlertState] = [:]
    private var timers = DeadlineHeap()
    /// Supervised devices (`supervision_s` > 0): when each must have been heard from again.
    private var silence = DeadlineHeap()
    /// Enrolled devices by "driver/address", so a frame's lookup does not scan the list.
    private var enrolled: [String: DeviceConfig] = [:]

    private static func index(_ c: GatewayConfig) -> [String: DeviceConfig] {
        Dictionary(c.devices.map { ("\($0.driver.rawValue)/\($0.address)", $0) }, uniquingKeysWith: { a, _ in a })
    }
    private var closedOrder: [String] = []

    public init(config: GatewayConfig, openAlerts: [Alert] = [], devices: [DeviceState] = [], issuedIDs: [String] = []) {
        self.config = config
        roster = Roster(config: config)
        topics = Topics(prefix: config.mqtt.topicPrefix, gateway: config.gateway.id)
        dedup = PressDeduplicator(windowMs: config.dedup.repeatWindowMs)
        enrolled = Self.index(config)
        for a in openAlerts where !a.state.isClosed {
            self.openAlerts[a.id] = a
            timers.schedule(a.id, at: a.nextStepAt)
        }
        for d in devices { self.devices[d.id] = d }
        for id in issuedIDs { ids.advance(past: id) }
        for a in openAlerts { ids.advance(past: a.id) }
    }

    /// Applies a new configuration; open alerts keep their ids, schedules and paged members.
    public mutating func reconfigure(_ new: GatewayConfig) {
        config = new
        roster = Roster(config: new)
        topics = Topics(prefix: new.mqtt.topicPrefix, gateway: new.gateway.id)
        dedup.windowNanos = UInt64(new.dedup.repeatWindowMs) * 1_000_000
        enrolled = Self.index(new)
        if let t = supervisionStarted { startSupervision(at: t) }
    }

    private var supervisionStarted: Timestamp?

    /// Starts (or, after a reload, restarts) the silence timers: each supervised device must be
    /// heard within `supervision_s` of when it was last heard, or of `now` if never.
    public mutating func startSupervision(at now: Timestamp) {
        supervisionStarted = now
        for d in config.devices {
            let due = d.supervisionSeconds > 0 && devices[d.id]?.online != false
                ? (devices[d.id]?.lastSeen.map { max($0, now.adding(seconds: -d.supervisionSeconds)) } ?? now).adding(seconds: d.supervisionSeconds)
                : nil
            silence.schedule(d.id, at: due)
        }
    }

    /// The earliest escalation deadline among open alerts (what the timer waits for).
    public mutating func nextDeadline() -> Timestamp? {
        switch (timers.earliest(), silence.earliest()) {
        case let (a?, b?): return min(a, b)
        case let (a, b): return a ?? b
        }
    }

    /// Timer entries dropped because their alert's schedule had changed since.
    public var staleFiringsIgnored: Int { timers.staleDropped }

    public mutating func nextID(at t: Timestamp) -> String { ids.next(at: t) }

    // MARK: Frames

    public mutating func handle(_ frame: DecodedFrame, at now: Moment, test: Bool = false) -> DeskOutcome {
        var out = DeskOutcome()
        if !test && dedup.isRepeat(frame, at: now.monotonicNanos) {
            out.repeats = 1
            return out
        }
        let t = now.wall
        guard let device = enrolled["\(frame.driver.rawValue)/\(frame.address)"] else {
            let event = GatewayEvent(id: ids.next(at: t), device: nil, driver: frame.driver, address: frame.address,
                                     kind: .unknownDevice, code: frame.code, receivedAt: t, raw: frame.raw)
            emit(event, into: &out)
            out.notes.append(DeskNote(.warning, "frame from unknown \(frame.driver.rawValue) address \(frame.address) (code \(frame.code))", kind: .unknownDevice))
            return out
        }
        let kind = frame.kind ?? device.codes[frame.code] ?? .unknown
        var event = GatewayEvent(id: ids.next(at: t), device: device.id, driver: frame.driver, address: frame.address,
                                 kind: kind, code: frame.code, receivedAt: t, raw: frame.raw, test: test)

        var state = devices[device.id] ?? DeviceState(id: device.id)
        state.online = true
        state.lastSeen = t
        if device.supervisionSeconds > 0 && !test { silence.schedule(device.id, at: t.adding(seconds: device.supervisionSeconds)) }
        if kind == .lowBattery { state.batteryLow = true }

        if kind.isEmergency {
            event.alertID = raiseOrJoin(device: device, kind: kind, at: t, test: test, into: &out)
        } else if kind == .cancel {
            event.alertID = cancel(device: device, at: t, into: &out)
        } else if kind.isTrouble {
            event.alertID = raiseTrouble(device: device, kind: kind, at: t, into: &out)
        } else {
            if kind == .restore { state.batteryLow = false }
            closeTroubles(device: device, restoring: kind == .restore, at: t, into: &out)
        }
        if kind == .unknown {
            out.notes.append(DeskNote(.notice, "device \(device.id) sent code \(frame.code), which its codes do not map", device: device.id, kind: .unknown))
        }
        emit(event, into: &out)
        update(device, state, at: t, into: &out)
        return out
    }

    /// A press marked `test` from an enrolled device, through the same decisions as a real one.
    public mutating func testAlert(device id: String, at now: Moment) -> DeskOutcome? {
        guard let device = config.device(id: id) else { return nil }
        let code = device.codes.first { $0.value == .panic }?.key ?? "8"
        let raw = device.driver == .ev1527 ? (EV1527Decoder.encode(address: device.address, key: UInt8(code, radix: 16) ?? 8) ?? []) : []
        let frame = DecodedFrame(driver: device.driver, address: device.address, code: code, kind: device.driver == .ev1527 ? nil : .panic, raw: raw)
        var out = handle(frame, at: now, test: true)
        if let i = out.events.indices.last, out.events[i].kind != .panic && out.events[i].alertID == nil {
            out.notes.append(DeskNote(.warning, "test press of \(id) did not map to panic", device: id))
        }
        return out
    }

    /// Records the event and publishes it ahead of the alert and device messages it caused.
    private mutating func emit(_ e: GatewayEvent, into out: inout DeskOutcome) {
        out.events.append(e)
        let gateway = config.gateway.id
        out.messages.insert(message(topics.events, retain: false, at: e.receivedAt) { Payloads.event(e, gateway: gateway, key: $0) }, at: 0)
    }

    private mutating func message(_ topic: String, retain: Bool, at t: Timestamp, _ body: (String) -> JSON) -> OutboundMessage {
        let key = ids.next(at: t)
        return OutboundMessage(topic: topic, payload: body(key).bytes, retain: retain, key: key)
    }

    private func openAlert(device: String, where predicate: (Alert) -> Bool) -> Alert? {
        openAlerts.values.filter { $0.device == device && predicate($0) }.max { $0.raisedAt < $1.raisedAt }
    }

    private mutating func raiseOrJoin(device: DeviceConfig, kind: EventKind, at t: Timestamp, test: Bool, into out: inout DeskOutcome) -> String {
        let mergeMs = Int64(config.dedup.pressMergeSeconds) * 1000
        if !test, var a = openAlert(device: device.id, where: { $0.kind.isEmergency && !$0.test && t.milliseconds - $0.raisedAt.milliseconds < mergeMs }) {
            a.pressCount += 1
            a.lastPressAt = t
            out.notes.append(DeskNote(.warning, "pressed again (\(a.pressCount) presses); paging \(a.paged.count) member(s) again", alert: a.id, device: device.id, kind: kind))
            for m in a.paged { page(a, member: m, reason: .pressedAgain, at: t, into: &out) }
            store(a, at: t, into: &out)
            return a.id
        }
        let grid = config.grid(id: device.grid)
        let policy = config.policy(id: grid?.policy ?? "default") ?? .builtInDefault
        var a = Alert(id: ids.next(at: t), device: device.id, kind: kind, grid: device.grid, resident: device.resident,
                      location: device.location, raisedAt: t, step: -1, test: test,
                      nextStepAt: t.adding(seconds: policy.steps[0].afterSeconds))
        out.notes.append(DeskNote(.critical, "\(test ? "TEST " : "")\(kind.rawValue) alert raised by \(device.id) (\(device.resident), \(device.location))", alert: a.id, device: device.id, kind: kind))
        fireDue(&a, at: t, reason: .raised, into: &out)
        store(a, at: t, into: &out)
        return a.id
    }

    private mutating func raiseTrouble(device: DeviceConfig, kind: EventKind, at t: Timestamp, into out: inout DeskOutcome) -> String {
        if var a = openAlert(device: device.id, where: { $0.kind == kind }) {
            a.pressCount += 1
            a.lastPressAt = t
            store(a, at: t, into: &out)
            return a.id
        }
        var a = Alert(id: ids.next(at: t), device: device.id, kind: kind, grid: device.grid, resident: device.resident,
                      location: device.location, raisedAt: t, step: 0)
        out.notes.append(DeskNote(.warning, "\(kind.rawValue) trouble on \(device.id)", alert: a.id, device: device.id, kind: kind))
        let primary = roster.resolve(.gridPrimary, grid: a.grid, at: t)
        if primary.isEmpty {
            out.notes.append(DeskNote(.error, "roster gap: no primary on shift in \(a.grid) for a \(kind.rawValue) trouble", alert: a.id, device: device.id))
        }
        for m in primary {
            a.paged.append(m)
            page(a, member: m, reason: .raised, at: t, into: &out)
        }
        store(a, at: t, into: &out)
        return a.id
    }

    private mutating func cancel(device: DeviceConfig, at t: Timestamp, into out: inout DeskOutcome) -> String? {
        guard var a = openAlert(device: device.id, where: { $0.kind.isEmergency }) else {
            out.notes.append(DeskNote(.info, "cancel from \(device.id) with no open alert", device: device.id, kind: .cancel))
            return nil
        }
        a.state = .cancelled
        a.resolvedAt = t
        a.nextStepAt = nil
        out.notes.append(DeskNote(.notice, "cancelled from the device", alert: a.id, device: device.id, kind: .cancel))
        for m in a.paged { page(a, member: m, reason: .cancelled, at: t, into: &out) }
        store(a, at: t, into: &out)
        return a.id
    }

    private mutating func closeTroubles(device: DeviceConfig, restoring: Bool, at t: Timestamp, into out: inout DeskOutcome) {
        // supervision_loss ends with any frame; battery and tamper need a restore.
        for var a in openAlerts.values where a.device == device.id && a.kind.isTrouble && (restoring || a.kind == .supervisionLoss) {
            a.state = .resolved
            a.resolvedAt = t
            a.resolvedBy = "device"
            out.notes.append(DeskNote(.notice, "\(a.kind.rawValue) trouble cleared by the device", alert: a.id, device: device.id, kind: a.kind))
            store(a, at: t, into: &out)
        }
    }

    // MARK: Escalation

    /// When step `k` (counted across rounds) is due for an alert raised at `raisedAt`.
    public static func deadline(step k: Int, policy: PolicyConfig, raisedAt: Timestamp) -> Timestamp? {
        let n = policy.steps.count
        guard k >= 0, k < n * (policy.repeatCount + 1) else { return nil }
        let round = k / n
        let roundLength = policy.steps[n - 1].afterSeconds + policy.repeatAfterSeconds
        return raisedAt.adding(seconds: round * roundLength + policy.steps[k % n].afterSeconds)
    }

    private func policy(for a: Alert) -> PolicyConfig {
        config.policy(id: config.grid(id: a.grid)?.policy ?? "default") ?? .builtInDefault
    }

    /// Fires every step of `a` that is due at `t`, in order, each once.
    private mutating func fireDue(_ a: inout Alert, at t: Timestamp, reason: PageReason, into out: inout DeskOutcome) {
        let policy = policy(for: a)
        while a.state == .open, let due = a.nextStepAt, due <= t {
            let k = a.step + 1
            let n = policy.steps.count
            guard k < n * (policy.repeatCount + 1) else { a.nextStepAt = nil; break }
            let step = policy.steps[k % n]
            var members = [String]()
            for target in step.notify {
                for m in roster.resolve(target, grid: a.grid, at: t) where !members.contains(m) { members.append(m) }
            }
            a.step = k
            if members.isEmpty {
                out.notes.append(DeskNote(.error, "roster gap: step \(k) (\(step.notify.map(\.description).joined(separator: ", "))) finds nobody on shift in \(a.grid); moving on", alert: a.id, device: a.device))
                a.nextStepAt = k + 1 < n * (policy.repeatCount + 1) ? t : nil
                continue
            }
            out.notes.append(DeskNote(.notice, "step \(k): paging \(members.joined(separator: ", "))", alert: a.id, device: a.device))
            for m in members {
                if !a.paged.contains(m) { a.paged.append(m) }
                page(a, member: m, reason: reason, at: t, into: &out)
            }
            a.nextStepAt = Self.deadline(step: k + 1, policy: policy, raisedAt: a.raisedAt)
            if a.nextStepAt == nil {
                out.notes.append(DeskNote(.warning, "escalation ladder finished: the last step fired and nobody has acknowledged yet", alert: a.id, device: a.device))
            }
        }
    }

    /// Fires what is due at `t` (the timer's tick): ladder steps of open alerts, and ack timeouts
    /// of acked ones. Only live heap entries fire; each alert's schedule is stored with it.
    public mutating func fireDueSteps(at t: Timestamp) -> DeskOutcome {
        var out = DeskOutcome()
        for entry in silence.popDue(at: t) {
            guard let device = config.device(id: entry.alert), device.supervisionSeconds > 0 else { continue }
            out.lateness.append(t.milliseconds - entry.due.milliseconds)
            var state = devices[device.id] ?? DeviceState(id: device.id)
            state.online = false
            out.notes.append(DeskNote(.error, "\(device.id) not heard for \(device.supervisionSeconds) s (last \(state.lastSeen?.rfc3339 ?? "never"))", device: device.id, kind: .supervisionLoss))
            _ = raiseTrouble(device: device, kind: .supervisionLoss, at: t, into: &out)
            update(device, state, at: t, into: &out)
        }
        for entry in timers.popDue(at: t) {
            guard var a = openAlerts[entry.alert], let due = a.nextStepAt, due <= t else { continue }
            out.lateness.append(t.milliseconds - due.milliseconds)
            if a.state == .acked {
                reopenAfterAckTimeout(&a, at: t, into: &out)
            } else {
                fireDue(&a, at: t, reason: .escalated, into: &out)
            }
            store(a, at: t, into: &out)
        }
        return out
    }

    /// The acker fell silent: the alert opens again, the acker and the current step's members are
    /// paged again, and the ladder goes on from there.
    private mutating func reopenAfterAckTimeout(_ a: inout Alert, at t: Timestamp, into out: inout DeskOutcome) {
        let policy = policy(for: a)
        let acker = a.ackedBy
        a.state = .open
        a.ackedBy = nil
        a.ackedAt = nil
        var members = acker.map { [$0] } ?? []
        if a.step >= 0 {
            for target in policy.steps[a.step % policy.steps.count].notify {
                for m in roster.resolve(target, grid: a.grid, at: t) where !members.contains(m) { members.append(m) }
            }
        }
        out.notes.append(DeskNote(.warning, "no resolve \(policy.ackTimeoutSeconds) s after \(acker ?? "the") ack: reopened, paging \(members.joined(separator: ", "))", alert: a.id, device: a.device, member: acker))
        for m in members {
            if !a.paged.contains(m) { a.paged.append(m) }
            page(a, member: m, reason: .reopened, at: t, into: &out)
        }
        if let this = Self.deadline(step: a.step, policy: policy, raisedAt: a.raisedAt),
           let next = Self.deadline(step: a.step + 1, policy: policy, raisedAt: a.raisedAt) {
            a.nextStepAt = t.adding(milliseconds: next.milliseconds - this.milliseconds)
        } else {
            a.nextStepAt = nil
        }
    }

    // MARK: Actions

    public mutating func act(_ action: MemberAction, member: String, alert id: String, note: String? = nil,
                             source: ActionSource, at t: Timestamp) throws(ActionError) -> DeskOutcome {
        guard config.member(id: member) != nil else { throw .unknownMember(member) }
        guard var a = openAlerts[id] else {
            if let state = recentlyClosed[id] { throw .closed(id, state) }
            throw .unknownAlert(id)
        }
        if source == .mqtt && !a.paged.contains(member) && !roster.isOnRoster(member: member, grid: a.grid) {
            throw .notAllowed(member: member, alert: id)
        }
        var out = DeskOutcome()
        switch action {
        case .ack:
            guard a.state == .open else { throw .invalid("alert \(id) is already acked by \(a.ackedBy ?? "someone")") }
            a.state = .acked
            a.ackedBy = member
            a.ackedAt = t
            let timeout = policy(for: a).ackTimeoutSeconds
            a.nextStepAt = timeout > 0 ? t.adding(seconds: timeout) : nil
            out.notes.append(DeskNote(.notice, "acked by \(member) via \(source.rawValue)", alert: id, device: a.device, member: member))
        case .resolve:
            a.state = .resolved
            a.resolvedAt = t
            a.resolvedBy = member
            a.note = note ?? a.note
            a.nextStepAt = nil
            out.notes.append(DeskNote(.notice, "resolved by \(member) via \(source.rawValue)\(note.map { ": \($0)" } ?? "")", alert: id, device: a.device, member: member))
        case .decline:
            if a.state == .acked {
                guard a.ackedBy == member else { throw .invalid("alert \(id) is acked by \(a.ackedBy ?? "someone"); only they can decline it") }
                a.state = .open
                a.ackedBy = nil
                a.ackedAt = nil
            }
            out.notes.append(DeskNote(.warning, "declined by \(member) via \(source.rawValue); next step now", alert: id, device: a.device, member: member))
            let policy = policy(for: a)
            if a.step + 1 < policy.steps.count * (policy.repeatCount + 1) {
                a.nextStepAt = t
                fireDue(&a, at: t, reason: .escalated, into: &out)
            } else {
                out.notes.append(DeskNote(.error, "declined after the last step; nobody left to page", alert: id, device: a.device, member: member))
            }
        }
        if let note, action != .resolve { a.note = note }
        store(a, at: t, into: &out)
        return out
    }

    // MARK: Publishing

    /// Remembers a closed alert's state (the last 4096) for the errors of late actions.
    public mutating func rememberClosed(_ a: Alert) {
        if recentlyClosed.updateValue(a.state, forKey: a.id) == nil { closedOrder.append(a.id) }
        if closedOrder.count > 4096 { recentlyClosed[closedOrder.removeFirst()] = nil }
    }

    /// Messages that put the broker's retained copies back in step: every open alert and every
    /// device heard from. Sent after each (re)connect, behind whatever is already queued.
    public mutating func retainedSnapshot(at t: Timestamp) -> DeskOutcome {
        var out = DeskOutcome()
        for a in openAlerts.values.sorted(by: { $0.id < $1.id }) {
            out.messages.append(alertMessage(a, retain: true, at: t))
        }
        for d in config.devices {
            guard let state = devices[d.id] else { continue }
            out.messages.append(deviceMessage(d, state, at: t))
        }
        return out
    }

    /// Records a device's new state and publishes it (retained).
    private mutating func update(_ d: DeviceConfig, _ state: DeviceState, at t: Timestamp, into out: inout DeskOutcome) {
        devices[d.id] = state
        out.record(state)
        out.messages.append(deviceMessage(d, state, at: t))
    }

    private mutating func deviceMessage(_ d: DeviceConfig, _ state: DeviceState, at t: Timestamp) -> OutboundMessage {
        let gateway = config.gateway.id
        return message(topics.device(d.id), retain: true, at: t) { Payloads.device(d, state: state, gateway: gateway, key: $0) }
    }

    private mutating func alertMessage(_ a: Alert, retain: Bool, at t: Timestamp) -> OutboundMessage {
        let gateway = config.gateway.id
        return message(topics.alert(a.id), retain: retain, at: t) { Payloads.alert(a, gateway: gateway, key: $0) }
    }

    private mutating func page(_ a: Alert, member: String, reason: PageReason, at t: Timestamp, into out: inout DeskOutcome) {
        let gridName = config.grid(id: a.grid)?.name ?? a.grid
        out.pageMessages.append(message(topics.pages(member), retain: false, at: t) {
            Payloads.page(a, member: member, reason: reason, gridName: gridName, at: t, key: $0)
        })
        out.pages += 1
    }

    /// Records the alert's new state, publishes it (retained while open; on close the final state,
    /// then an empty retained message clears it) and keeps `openAlerts` in step.
    private mutating func store(_ a: Alert, at t: Timestamp, into out: inout DeskOutcome) {
        out.record(a)
        timers.schedule(a.id, at: a.state.isClosed ? nil : a.nextStepAt)
        if a.state.isClosed {
            openAlerts[a.id] = nil
            rememberClosed(a)
            out.messages.append(alertMessage(a, retain: false, at: t))
            out.messages.append(OutboundMessage(topic: topics.alert(a.id), payload: [], retain: true, key: ids.next(at: t)))
        } else {
            openAlerts[a.id] = a
            out.messages.append(alertMessage(a, retain: true, at: t))
        }
    }
}
