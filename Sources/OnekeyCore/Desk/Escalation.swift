/// The ladder, reminders and responders' actions (CONTRACT §6). No emergency is ever silent:
/// - a step that resolves to nobody (a roster gap, or only members who declined) pages the
///   policy's `fallback` (reason `fallback`); the next step still fires at its own deadline;
/// - if the fallback is nobody too, nobody is paged at that step: a critical note, and the alert
///   is `unattended` while nobody at all has been paged for it;
/// - after the last round, an emergency not acked or closed is paged every `remind_s` (reason
///   `reminder`; `step` keeps counting) — test alerts stop after the ladder;
/// - deadlines are monotonic instants counted from the alert's anchor (its raise, or the instant
///   its restored or reopened schedule implies), so a wall-clock step changes nothing.
extension AlertDesk {
    static let nanosPerSecond: Int64 = 1_000_000_000

    /// Number of ladder steps, all rounds together.
    public static func ladderLength(_ policy: PolicyConfig) -> Int {
        policy.steps.count * (policy.repeatCount + 1)
    }

    /// Seconds after the anchor at which step `k` (counted across rounds, then reminders) is due.
    public static func offset(step k: Int, policy: PolicyConfig) -> Int? {
        let n = policy.steps.count
        guard k >= 0, n > 0 else { return nil }
        let roundLength = policy.steps[n - 1].afterSeconds + policy.repeatAfterSeconds
        let ladder = ladderLength(policy)
        if k < ladder { return (k / n) * roundLength + policy.steps[k % n].afterSeconds }
        let lastStep = (ladder - 1) / n * roundLength + policy.steps[n - 1].afterSeconds
        return lastStep + (k - ladder + 1) * max(1, policy.remindSeconds)
    }

    func policy(for a: Alert) -> PolicyConfig {
        let p = config.policy(id: config.grid(id: a.grid)?.policy ?? "default") ?? .builtInDefault
        return p.steps.isEmpty ? .builtInDefault : p
    }

    func resolve(_ targets: [NotifyTarget], grid: String, at t: Timestamp) -> [String] {
        var members = [String]()
        for target in targets {
            for m in roster.resolve(target, grid: grid, at: t) where !members.contains(m) { members.append(m) }
        }
        return members
    }

    /// When the alert's next step (ladder or reminder) is due, nil when nothing more is scheduled.
    func dueOfNextStep(_ a: Alert) -> Int64? {
        let policy = policy(for: a)
        guard a.kind.isEmergency, let anchor = anchors[a.id],
              !(a.test && a.step + 1 >= Self.ladderLength(policy)),
              let offset = Self.offset(step: a.step + 1, policy: policy) else { return nil }
        return anchor + Int64(offset) * Self.nanosPerSecond
    }

    /// Schedules the alert's timer and keeps its wall-clock `nextStepAt` in step with it.
    mutating func setDeadline(_ a: inout Alert, _ due: Int64?, at now: Moment) {
        timers.schedule(a.id, at: due)
        a.nextStepAt = due.map { now.wall(atMonotonic: $0) }
    }

    /// An alert loaded from the store at start: its wall deadline mapped to the monotonic clock
    /// through `now`; one that fell due while the daemon was down fires once, at start, and the
    /// rest of the ladder keeps its spacing from there.
    mutating func restore(_ a: inout Alert, at now: Moment) {
        if a.kind.isEmergency { a.unattended = a.paged.isEmpty && a.step >= 0 }  // derived: the store need not keep it
        raisedMono[a.id] = min(now.monotonic, now.monotonic(at: a.raisedAt))
        var due = a.nextStepAt.map { max(now.monotonic, now.monotonic(at: $0)) }
        if due == nil && a.state == .open && a.kind.isEmergency && !a.test {
            due = now.monotonic  // stored without a schedule (an older version's silent alert): resume now
        }
        let policy = policy(for: a)
        if a.state == .open, let d = due, let offset = Self.offset(step: a.step + 1, policy: policy) {
            anchors[a.id] = d - Int64(offset) * Self.nanosPerSecond
        } else {
            anchors[a.id] = now.monotonic(at: a.raisedAt)
        }
        setDeadline(&a, due, at: now)
    }

    /// Who step `k` pages now: its targets on shift, less those who declined; if that is nobody,
    /// the policy's fallback, less those who declined (`fallback` true). Reminder steps use the
    /// last ladder step's targets.
    func stepCandidates(_ a: Alert, step k: Int, at t: Timestamp) -> (members: [String], fallback: Bool) {
        let policy = policy(for: a)
        let n = policy.steps.count
        let notify = policy.steps[min(max(k, 0), Self.ladderLength(policy) - 1) % n].notify
        let declined = declined[a.id] ?? []
        let onShift = resolve(notify, grid: a.grid, at: t).filter { !declined.contains($0) }
        if !onShift.isEmpty { return (onShift, false) }
        return (resolve(policy.fallback, grid: a.grid, at: t).filter { !declined.contains($0) }, true)
    }

    /// A reminder goes to everyone paged so far who did not decline; if nobody was paged, to the
    /// last step's targets or the fallback, resolved again; if everyone declined, to them anyway.
    func reminderTargets(_ a: Alert, at t: Timestamp) -> [String] {
        let declined = declined[a.id] ?? []
        let paged = a.paged.filter { !declined.contains($0) }
        if !paged.isEmpty { return paged }
        let again = stepCandidates(a, step: a.step, at: t).members
        return again.isEmpty ? a.paged : again
    }

    /// Fires every step of `a` due by `now`, from `first` on, in order, each once; then schedules
    /// the next one.
    mutating func fireDue(_ a: inout Alert, from first: Int64?, reason: PageReason, at now: Moment, into out: inout DeskOutcome) {
        var due = first
        var reason = reason
        while a.state == .open, let d = due, d <= now.monotonic {
            fireStep(&a, reason: reason, at: now.wall, into: &out)
            reason = .escalated
            due = dueOfNextStep(a)
            if let next = due, next <= now.monotonic, a.step >= Self.ladderLength(policy(for: a)) {
                // The loop stalled longer than remind_s: one reminder now, the next remind_s later.
                anchors[a.id, default: now.monotonic] += now.monotonic - next + Int64(max(1, policy(for: a).remindSeconds)) * Self.nanosPerSecond
                due = dueOfNextStep(a)
            }
        }
        setDeadline(&a, a.state == .open ? due : nil, at: now)
    }

    /// Fires step `a.step + 1`: a ladder step (its targets, else the fallback) or a reminder.
    private mutating func fireStep(_ a: inout Alert, reason: PageReason, at t: Timestamp, into out: inout DeskOutcome) {
        let policy = policy(for: a)
        let ladder = Self.ladderLength(policy)
        let k = a.step + 1
        a.step = k
        var members: [String]
        var why = reason
        if k < ladder {
            let step = policy.steps[k % policy.steps.count]
            let picked = stepCandidates(a, step: k, at: t)
            members = picked.members
            if picked.fallback {
                why = .fallback
                out.notes.append(DeskNote(.error, "roster gap: step \(k) (\(step.notify.map(\.description).joined(separator: ", "))) finds nobody to page in \(a.grid); paging the fallback (\(policy.fallback.map(\.description).joined(separator: ", ")))", alert: a.id, device: a.device))
            }
        } else {
            members = reminderTargets(a, at: t)
            why = .reminder
        }
        guard !members.isEmpty else {
            a.unattended = a.paged.isEmpty
            out.notes.append(DeskNote(.critical, "step \(k): nobody at all can be paged for this \(a.kind.rawValue) alert (no one on shift, fallback empty)\(a.paged.isEmpty ? "; UNATTENDED" : "")", alert: a.id, device: a.device, kind: a.kind))
            return
        }
        out.notes.append(DeskNote(.notice, "step \(k) (\(why.rawValue)): paging \(members.joined(separator: ", "))", alert: a.id, device: a.device))
        for m in members {
            if !a.paged.contains(m) { a.paged.append(m) }
            page(a, member: m, reason: why, at: t, into: &out)
        }
        a.unattended = false
        if k == ladder - 1 {
            out.notes.append(DeskNote(.warning, a.test ? "escalation ladder finished (test alert: no reminders)"
                                                       : "last step of the ladder fired; reminders every \(policy.remindSeconds) s until acknowledged",
                                      alert: a.id, device: a.device))
        }
    }

    /// A press joins an alert for which nobody could be paged yet: the roster is asked again.
    mutating func pageCurrentStep(_ a: inout Alert, reason: PageReason, at t: Timestamp, into out: inout DeskOutcome) {
        let members = stepCandidates(a, step: a.step, at: t).members
        guard !members.isEmpty else {
            out.notes.append(DeskNote(.critical, "pressed again (\(a.pressCount) presses) and still nobody at all can be paged; UNATTENDED", alert: a.id, device: a.device, kind: a.kind))
            return
        }
        out.notes.append(DeskNote(.warning, "pressed again (\(a.pressCount) presses); paging \(members.joined(separator: ", "))", alert: a.id, device: a.device, kind: a.kind))
        for m in members {
            a.paged.append(m)
            page(a, member: m, reason: reason, at: t, into: &out)
        }
        a.unattended = false
    }

    /// Fires what is due by `now` on the monotonic clock (the timer's tick): supervision, ladder
    /// steps and reminders of open alerts, ack timeouts of acked ones.
    /// `coalescingNanos`: steps due that much after `now` fire with the due ones, in the same
    /// outcome (one commit), up to that much early — so a burst of deadlines a little apart is
    /// not fired ever later, each waiting for the previous one's write (the daemon uses 10 ms).
    public mutating func fireDueSteps(at now: Moment, coalescingNanos: UInt64 = 0) -> DeskOutcome {
        var out = fireSupervision(at: now)
        let horizon = Moment(wall: now.wall, monotonicNanos: now.monotonicNanos + coalescingNanos)
        for entry in timers.popDue(at: horizon.monotonic) {
            guard var a = openAlerts[entry.alert] else { continue }
            out.lateness.append(max(0, now.monotonic - entry.due) / 1_000_000)
            if a.state == .acked {
                reopenAfterAckTimeout(&a, at: horizon, into: &out)
            } else {
                fireDue(&a, from: entry.due, reason: .escalated, at: horizon, into: &out)
            }
            store(a, at: now.wall, into: &out)
        }
        return out
    }

    /// The acker fell silent: the alert opens again, the acker and the current step's members are
    /// paged again, and the ladder (or the reminders) go on from there with their own spacing.
    private mutating func reopenAfterAckTimeout(_ a: inout Alert, at now: Moment, into out: inout DeskOutcome) {
        let t = now.wall
        let policy = policy(for: a)
        let acker = a.ackedBy
        a.state = .open
        a.ackedBy = nil
        a.ackedAt = nil
        var members = acker.map { [$0] } ?? []
        if a.step >= 0 {
            for m in stepCandidates(a, step: a.step, at: t).members where !members.contains(m) { members.append(m) }
        }
        out.notes.append(DeskNote(.warning, "no resolve \(policy.ackTimeoutSeconds) s after \(acker ?? "the") ack: reopened, paging \(members.joined(separator: ", "))", alert: a.id, device: a.device, member: acker))
        for m in members {
            if !a.paged.contains(m) { a.paged.append(m) }
            page(a, member: m, reason: .reopened, at: t, into: &out)
        }
        anchors[a.id] = now.monotonic - Int64(Self.offset(step: a.step, policy: policy) ?? 0) * Self.nanosPerSecond
        setDeadline(&a, dueOfNextStep(a), at: now)
    }

    // MARK: Actions

    public mutating func act(_ action: MemberAction, member: String, alert id: String, note: String? = nil,
                             source: ActionSource, at now: Moment) throws(ActionError) -> DeskOutcome {
        let t = now.wall
        guard config.member(id: member) != nil else { throw .unknownMember(member) }
        guard var a = openAlerts[id] else {
            if let state = recentlyClosedState(id) { throw .closed(id, state) }
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
            declined[id]?.remove(member)  // changed their mind
            let timeout = policy(for: a).ackTimeoutSeconds
            setDeadline(&a, timeout > 0 ? now.monotonic + Int64(timeout) * Self.nanosPerSecond : nil, at: now)
            out.notes.append(DeskNote(.notice, "acked by \(member) via \(source.rawValue)", alert: id, device: a.device, member: member))
        case .resolve:
            a.state = .resolved
            a.resolvedAt = t
            a.resolvedBy = member
            a.note = note ?? a.note
            out.notes.append(DeskNote(.notice, "resolved by \(member) via \(source.rawValue)\(note.map { ": \($0)" } ?? "")", alert: id, device: a.device, member: member))
        case .decline:
            // Idempotent: a repeated decline (an app retrying, a hostile client) fires nothing more.
            guard !(declined[id]?.contains(member) ?? false) else { throw .invalid("\(member) already declined alert \(id)") }
            if a.state == .acked {
                guard a.ackedBy == member else { throw .invalid("alert \(id) is acked by \(a.ackedBy ?? "someone"); only they can decline it") }
                a.state = .open
                a.ackedBy = nil
                a.ackedAt = nil
                // The ladder was stopped: it resumes with the next step now and its own spacing
                // after that, not with a burst of every step that would have fired meanwhile.
                anchors[id] = now.monotonic - Int64(Self.offset(step: a.step + 1, policy: policy(for: a)) ?? 0) * Self.nanosPerSecond
            }
            decline(&a, member: member, source: source, at: now, into: &out)
        }
        if let note, action != .resolve { a.note = note }
        store(a, at: t, into: &out)
        return out
    }

    /// A member cannot go: the next ladder step fires now; after the ladder, a reminder goes at
    /// once to whoever else can be paged; if nobody else can, the reminders keep their schedule.
    private mutating func decline(_ a: inout Alert, member: String, source: ActionSource, at now: Moment, into out: inout DeskOutcome) {
        declined[a.id, default: []].insert(member)
        let ladder = Self.ladderLength(policy(for: a))
        let others = reminderTargets(a, at: now.wall).filter { !(declined[a.id] ?? []).contains($0) }
        if a.step + 1 < ladder {
            out.notes.append(DeskNote(.warning, "declined by \(member) via \(source.rawValue); next step now", alert: a.id, device: a.device, member: member))
            fireDue(&a, from: now.monotonic, reason: .escalated, at: now, into: &out)
        } else if !others.isEmpty && !a.test {
            out.notes.append(DeskNote(.warning, "declined by \(member) via \(source.rawValue) after the last step; reminding \(others.joined(separator: ", ")) now", alert: a.id, device: a.device, member: member))
            fireDue(&a, from: now.monotonic, reason: .reminder, at: now, into: &out)
        } else {
            out.notes.append(DeskNote(.error, "declined by \(member) via \(source.rawValue) after the last step and nobody else can be paged; \(a.test ? "test alert: no reminders" : "reminders continue to those who declined")", alert: a.id, device: a.device, member: member))
            if let due = dueOfNextStep(a), due <= now.monotonic {
                // Not straight back to the member who just declined: one remind_s from now.
                anchors[a.id, default: now.monotonic] += now.monotonic - due + Int64(policy(for: a).remindSeconds) * Self.nanosPerSecond
            }
            setDeadline(&a, dueOfNextStep(a), at: now)
        }
    }
}
