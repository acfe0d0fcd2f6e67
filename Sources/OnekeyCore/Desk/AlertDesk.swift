/// The alarm desk: the gateway's decisions, with no I/O. Frames, timer ticks and responders'
/// actions come in; a `DeskOutcome` (what to store, what to publish, what to log) goes out.
///
/// Rules (CONTRACT §5, §6):
/// - repeats of a frame within `repeat_window_ms` are one press (leading edge acts), also across
///   a restart (`recentEvents` seeds the windows);
/// - a frame from an unenrolled address is counted; an `unknown_device` event (with `count`) goes
///   out at most once per address per `unknown_report_s` (`unknownAddresses` lists them);
/// - an emergency raises an alert, or joins the device's open alert younger than `press_merge_s`
///   (press_count + 1, everyone already paged is paged again: `pressed_again`);
/// - `cancel` closes the device's open alert as `cancelled` and tells everyone paged;
/// - a trouble pages the grid's primary (or the policy's fallback) once, never escalates, and
///   closes when the device is heard normally again;
/// - the ladder (Escalation.swift): step k fires at its own deadline; a step that resolves to
///   nobody pages the policy's `fallback` (reason `fallback`); if that is nobody too the alert is
///   `unattended` and a critical note is written; after the last round, reminders every
///   `remind_s` until acked or closed; `ack` stops, `decline` fires the next step (or a reminder
///   to the decliner's replacements) now, `resolve` closes.
///
/// Time: every deadline is a monotonic instant (`Moment.monotonic`, signed ns) while the daemon
/// runs; alerts carry the matching wall time in `nextStepAt` for display, storage and restart.
/// Shifts are resolved, and records stamped, on the wall clock of the moment passed in.
///
/// API for the event loop (changed in this revision):
///   init(config:openAlerts:devices:issuedIDs:recentEvents:at: Moment)
///   handle(_ frame:, at: Moment, test:) -> DeskOutcome
///   fireDueSteps(at: Moment) -> DeskOutcome            // call when nextDeadline() is reached
///   nextDeadline() -> UInt64?                           // CLOCK_MONOTONIC ns; arm the timer for it
///   nextDeadlineWall(now: Moment) -> Timestamp?         // the same, on the wall clock (status)
///   startSupervision(at: Moment)
///   act(_:member:alert:note:source:at: Moment) throws(ActionError) -> DeskOutcome
///   unknownAddresses: [UnknownAddress]; unknownEvicted: Int   // onekeyctl unknown
public struct AlertDesk: Sendable {
    public private(set) var config: GatewayConfig
    public private(set) var roster: Roster
    public private(set) var topics: Topics
    var dedup: PressDeduplicator
    var ids = IdentifierSource()
    /// Alerts not yet closed (open or acked), by id.
    public private(set) var openAlerts: [String: Alert] = [:]
    /// The ids in `openAlerts` by device, so a frame's lookup does not scan every open alert.
    private var openByDevice: [String: [String]] = [:]
    public private(set) var devices: [String: DeviceState] = [:]
    /// Recently closed alerts, so a late action gets "already resolved", not "unknown".
    private var recentlyClosed: [String: AlertState] = [:]
    /// Escalation, reminder and ack-timeout deadlines of open alerts (monotonic ns).
    var timers = DeadlineHeap()
    /// The monotonic instant each open alert's ladder counts from (its raise, or the instant its
    /// restored or reopened schedule implies).
    var anchors: [String: Int64] = [:]
    /// The monotonic instant each open alert was raised (for `press_merge_s`, immune to wall steps).
    var raisedMono: [String: Int64] = [:]
    /// Members who declined each open alert: later steps and reminders page others first.
    var declined: [String: Set<String>] = [:]
    /// Supervised devices (`supervision_s` > 0): when each must have been heard from again.
    private var silence = DeadlineHeap()
    private(set) var unknown: UnknownAddressTable
    /// Enrolled devices by "driver/address", so a frame's lookup does not scan the list.
    /// Positions in `config.devices`, not copies: a district's 20,000 copies were 3 MB.
    private var enrolled: [String: Int] = [:]

    private static func index(_ c: GatewayConfig) -> [String: Int] {
        var index = [String: Int](minimumCapacity: c.devices.count)
        for (n, d) in c.devices.enumerated() {
            let key = "\(d.driver.rawValue)/\(d.address)"
            if index[key] == nil { index[key] = n }
        }
        return index
    }
    private var closedOrder: [String] = []

    /// `openAlerts`, `devices` and `issuedIDs` come from the store; `recentEvents` are the events
    /// stored within the last `repeat_window_ms` (their repeats still arriving are repeats).
    /// Each stored deadline is mapped to the monotonic clock through `now`; one that fell due
    /// while the daemon was down fires once, at the first `fireDueSteps`.
    public init(config: GatewayConfig, openAlerts: [Alert] = [], devices: [DeviceState] = [], issuedIDs: [String] = [],
                recentEvents: [GatewayEvent] = [], at now: Moment) {
        self.config = config
        roster = Roster(config: config)
        topics = Topics(prefix: config.mqtt.topicPrefix, gateway: config.gateway.id)
        dedup = PressDeduplicator(windowMs: config.dedup.repeatWindowMs)
        dedup.seed(recentEvents, at: now)
        unknown = UnknownAddressTable(windowSeconds: config.dedup.unknownReportSeconds)
        enrolled = Self.index(config)
        for id in issuedIDs { ids.advance(past: id) }
        for e in recentEvents { ids.advance(past: e.id) }
        for var a in openAlerts where !a.state.isClosed {
            ids.advance(past: a.id)
            restore(&a, at: now)
            setOpen(a)
        }
        for d in devices { self.devices[d.id] = d }
    }

    /// Applies a new configuration; open alerts keep their ids, schedules and paged members.
    public mutating func reconfigure(_ new: GatewayConfig) { reconfigure(Self.prepare(new)) }

    /// What a new configuration needs built before it can be swapped in (the roster's and the
    /// enrolment indexes): built off the event loop (`prepare` is pure), swapped in on it.
    public struct PreparedConfig: Sendable {
        public let config: GatewayConfig
        let roster: Roster
        let enrolled: [String: Int]
    }

    public static func prepare(_ new: GatewayConfig) -> PreparedConfig {
        PreparedConfig(config: new, roster: Roster(config: new), enrolled: index(new))
    }

    /// Swaps in a prepared configuration; open alerts keep their ids, schedules and paged members.
    public mutating func reconfigure(_ prepared: PreparedConfig) {
        let new = prepared.config
        config = new
        roster = prepared.roster
        topics = Topics(prefix: new.mqtt.topicPrefix, gateway: new.gateway.id)
        dedup.windowNanos = UInt64(new.dedup.repeatWindowMs) * 1_000_000
        unknown.windowNanos = Int64(new.dedup.unknownReportSeconds) * 1_000_000_000
        enrolled = prepared.enrolled
        for d in new.devices { unknown.forget(driver: d.driver, address: d.address) }
        if let t = supervisionStarted { startSupervision(at: t) }
    }

    private var supervisionStarted: Moment?

    /// Starts (or, after a reload, restarts) the silence timers: each supervised device must be
    /// heard within `supervision_s` of when it was last heard, or of `now` if never.
    public mutating func startSupervision(at now: Moment) {
        supervisionStarted = now
        for d in config.devices {
            guard d.supervisionSeconds > 0, devices[d.id]?.online != false else { silence.schedule(d.id, at: nil); continue }
            let heard = devices[d.id]?.lastSeen.map { min(now.monotonic, now.monotonic(at: $0)) } ?? now.monotonic
            let due = max(heard, now.monotonic - Int64(d.supervisionSeconds) * 1_000_000_000) + Int64(d.supervisionSeconds) * 1_000_000_000
            silence.schedule(d.id, at: due)
        }
    }

    /// The earliest deadline of all (escalation, reminders, ack timeouts, supervision), in
    /// CLOCK_MONOTONIC nanoseconds: what the one timer waits for.
    public mutating func nextDeadline() -> UInt64? {
        let earliest: Int64?
        switch (timers.earliest(), silence.earliest()) {
        case let (a?, b?): earliest = min(a, b)
        case let (a, b): earliest = a ?? b
        }
        return earliest.map { UInt64(max(0, $0)) }
    }

    /// `nextDeadline()` on the wall clock as it reads at `now` (for status and display).
    public mutating func nextDeadlineWall(now: Moment) -> Timestamp? {
        nextDeadline().map { now.wall(atMonotonic: Int64($0)) }
    }

    /// Timer entries dropped because their alert's schedule had changed since.
    public var staleFiringsIgnored: Int { timers.staleDropped }

    public mutating func nextID(at t: Timestamp) -> String { ids.next(at: t) }

    /// Addresses heard but not enrolled, most recently heard first (at most 1,024).
    public var unknownAddresses: [UnknownAddress] { unknown.addresses }
    /// Unknown addresses dropped from the table to make room for newer ones.
    public var unknownEvicted: Int { unknown.evicted }

    // MARK: Frames

    public mutating func handle(_ frame: DecodedFrame, at now: Moment, test: Bool = false) -> DeskOutcome {
        var out = DeskOutcome()
        let t = now.wall
        guard let device = enrolled["\(frame.driver.rawValue)/\(frame.address)"].map({ config.devices[$0] }) else {
            // Radio noise: counted, reported at most once per address per window, never a row per frame.
            switch unknown.heard(frame, at: now) {
            case .counted:
                out.unknownFramesCounted = 1
            case .throttled:
                out.unknownFramesCounted = 1
                out.notes.append(DeskNote(.warning, "more than \(UnknownAddressTable.maxReportsPerWindow) unknown addresses reported in \(config.dedup.unknownReportSeconds) s; the rest are only counted (onekeyctl unknown)", kind: .unknownDevice))
            case .report(let count):
                let event = GatewayEvent(id: ids.next(at: t), device: nil, driver: frame.driver, address: frame.address,
                                         kind: .unknownDevice, code: frame.code, receivedAt: t, raw: frame.raw, count: count)
                emit(event, into: &out)
                out.notes.append(DeskNote(.notice, "\(count) frame(s) from unknown \(frame.driver.rawValue) address \(frame.address) (code \(frame.code)); not enrolled", kind: .unknownDevice))
            }
            return out
        }
        if !test && dedup.isRepeat(frame, at: now.monotonicNanos) {
            out.repeats = 1
            return out
        }
        let kind = frame.kind ?? device.codes[frame.code] ?? .unknown
        var event = GatewayEvent(id: ids.next(at: t), device: device.id, driver: frame.driver, address: frame.address,
                                 kind: kind, code: frame.code, receivedAt: t, raw: frame.raw, test: test)

        var state = devices[device.id] ?? DeviceState(id: device.id)
        state.online = true
        state.lastSeen = t
        if device.supervisionSeconds > 0 && !test { silence.schedule(device.id, at: now.monotonic + Int64(device.supervisionSeconds) * 1_000_000_000) }
        if kind == .lowBattery { state.batteryLow = true }

        if kind.isEmergency {
            event.alertID = raiseOrJoin(device: device, kind: kind, at: now, test: test, into: &out)
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
        out.messages.insert(message(topics.events, retain: false, at: e.receivedAt) { Payloads.eventBytes(e, gateway: gateway, key: $0) }, at: 0)
    }

    private mutating func message(_ topic: String, retain: Bool, at t: Timestamp, _ body: (String) -> [UInt8]) -> OutboundMessage {
        let key = ids.next(at: t)
        return OutboundMessage(topic: topic, payload: body(key), retain: retain, key: key)
    }

    func openAlert(device: String, where predicate: (Alert) -> Bool) -> Alert? {
        openAlerts(device: device).filter(predicate).max { $0.raisedAt < $1.raisedAt }
    }

    /// The open alerts of one device (a handful), without scanning the others.
    func openAlerts(device: String) -> [Alert] {
        (openByDevice[device] ?? []).compactMap { openAlerts[$0] }
    }

    private mutating func setOpen(_ a: Alert) {
        if openAlerts.updateValue(a, forKey: a.id) == nil { openByDevice[a.device, default: []].append(a.id) }
    }

    private mutating func setClosed(_ a: Alert) {
        guard openAlerts.removeValue(forKey: a.id) != nil else { return }
        openByDevice[a.device]?.removeAll { $0 == a.id }
        if openByDevice[a.device]?.isEmpty == true { openByDevice[a.device] = nil }
    }

    private mutating func raiseOrJoin(device: DeviceConfig, kind: EventKind, at now: Moment, test: Bool, into out: inout DeskOutcome) -> String {
        let t = now.wall
        let merge = Int64(config.dedup.pressMergeSeconds) * Self.nanosPerSecond
        let joinable = test ? nil : openAlerts(device: device.id).filter {
            $0.kind.isEmergency && !$0.test && now.monotonic - (raisedMono[$0.id] ?? now.monotonic(at: $0.raisedAt)) < merge
        }.max { $0.raisedAt < $1.raisedAt }
        if var a = joinable {
            a.pressCount += 1
            a.lastPressAt = t
            if a.paged.isEmpty {
                // Nobody could be paged so far: ask the roster again rather than page nobody again.
                pageCurrentStep(&a, reason: .pressedAgain, at: t, into: &out)
            } else {
                out.notes.append(DeskNote(.warning, "pressed again (\(a.pressCount) presses); paging \(a.paged.count) member(s) again", alert: a.id, device: device.id, kind: kind))
                for m in a.paged { page(a, member: m, reason: .pressedAgain, at: t, into: &out) }
            }
            store(a, at: t, into: &out)
            return a.id
        }
        var a = Alert(id: ids.next(at: t), device: device.id, kind: kind, grid: device.grid, resident: device.resident,
                      location: device.location, raisedAt: t, step: -1, test: test)
        out.notes.append(DeskNote(.critical, "\(test ? "TEST " : "")\(kind.rawValue) alert raised by \(device.id) (\(device.resident), \(device.location))", alert: a.id, device: device.id, kind: kind))
        anchors[a.id] = now.monotonic
        raisedMono[a.id] = now.monotonic
        fireDue(&a, from: dueOfNextStep(a), reason: .raised, at: now, into: &out)
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
        var reason = PageReason.raised
        var members = roster.resolve(.gridPrimary, grid: a.grid, at: t)
        if members.isEmpty {
            members = resolve(policy(for: a).fallback, grid: a.grid, at: t)
            reason = .fallback
            out.notes.append(DeskNote(.error, "roster gap: no primary on shift in \(a.grid) for a \(kind.rawValue) trouble; \(members.isEmpty ? "the fallback finds nobody either" : "paging the fallback")", alert: a.id, device: device.id))
        }
        for m in members {
            a.paged.append(m)
            page(a, member: m, reason: reason, at: t, into: &out)
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
        out.notes.append(DeskNote(.notice, "cancelled from the device", alert: a.id, device: device.id, kind: .cancel))
        for m in a.paged { page(a, member: m, reason: .cancelled, at: t, into: &out) }
        store(a, at: t, into: &out)
        return a.id
    }

    private mutating func closeTroubles(device: DeviceConfig, restoring: Bool, at t: Timestamp, into out: inout DeskOutcome) {
        // supervision_loss ends with any frame; battery and tamper need a restore.
        for var a in openAlerts(device: device.id) where a.kind.isTrouble && (restoring || a.kind == .supervisionLoss) {
            a.state = .resolved
            a.resolvedAt = t
            a.resolvedBy = "device"
            out.notes.append(DeskNote(.notice, "\(a.kind.rawValue) trouble cleared by the device", alert: a.id, device: device.id, kind: a.kind))
            store(a, at: t, into: &out)
        }
    }

    /// Supervised devices not heard from in time (monotonic): each raises a supervision_loss.
    mutating func fireSupervision(at now: Moment) -> DeskOutcome {
        var out = DeskOutcome()
        let t = now.wall
        for entry in silence.popDue(at: now.monotonic) {
            guard let device = config.device(id: entry.alert), device.supervisionSeconds > 0 else { continue }
            out.lateness.append((now.monotonic - entry.due) / 1_000_000)
            var state = devices[device.id] ?? DeviceState(id: device.id)
            state.online = false
            out.notes.append(DeskNote(.error, "\(device.id) not heard for \(device.supervisionSeconds) s (last \(state.lastSeen?.rfc3339 ?? "never"))", device: device.id, kind: .supervisionLoss))
            _ = raiseTrouble(device: device, kind: .supervisionLoss, at: t, into: &out)
            update(device, state, at: t, into: &out)
        }
        return out
    }

    func recentlyClosedState(_ id: String) -> AlertState? { recentlyClosed[id] }

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
        out.isRetainedSnapshot = true
        for a in openAlerts.values.sorted(by: { $0.id < $1.id }) {
            out.alertMessages.append(alertMessage(a, retain: true, at: t))
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
        return message(topics.device(d.id), retain: true, at: t) { Payloads.deviceBytes(d, state: state, gateway: gateway, key: $0) }
    }

    private mutating func alertMessage(_ a: Alert, retain: Bool, at t: Timestamp) -> OutboundMessage {
        let gateway = config.gateway.id
        return message(topics.alert(a.id), retain: retain, at: t) { Payloads.alertBytes(a, gateway: gateway, key: $0) }
    }

    mutating func page(_ a: Alert, member: String, reason: PageReason, at t: Timestamp, into out: inout DeskOutcome) {
        let gridName = config.grid(id: a.grid)?.name ?? a.grid
        out.pageMessages.append(message(topics.pages(member), retain: false, at: t) {
            Payloads.pageBytes(a, member: member, reason: reason, gridName: gridName, at: t, key: $0)
        })
        out.pages += 1
    }

    /// Records the alert's new state, publishes it (retained while open; on close the final state,
    /// then an empty retained message clears it) and keeps `openAlerts` in step.
    mutating func store(_ a: Alert, at t: Timestamp, into out: inout DeskOutcome) {
        var a = a
        if a.state.isClosed {
            a.nextStepAt = nil
            timers.schedule(a.id, at: nil)
            anchors[a.id] = nil
            raisedMono[a.id] = nil
            declined[a.id] = nil
        }
        out.record(a)
        if a.state.isClosed {
            setClosed(a)
            rememberClosed(a)
            out.alertMessages.append(alertMessage(a, retain: false, at: t))
            out.alertMessages.append(OutboundMessage(topic: topics.alert(a.id), payload: [], retain: true, key: ids.next(at: t)))
        } else {
            setOpen(a)
            out.alertMessages.append(alertMessage(a, retain: true, at: t))
        }
    }
}
