/// One modem on one AT port (CONTRACT §11), as a pure state machine: the owner feeds it the
/// port's bytes, "opened"/"closed", and timer ticks (monotonic milliseconds), writes the bytes it
/// returns to the port, arms one timer for `nextDeadline`, and acts on its events.
///
///     portOpened → ESC, (settle) ATE0, AT+CMEE=2, AT+CPIN?, AT+CREG?, AT+CSQ, AT+CMGF=1,
///                  AT+CSCS="UCS2", AT+CSMP=17,167,0,8, AT+CNMI=2,1,0,0,0 → ready
///     ready:  AT+CMGS="<ucs2 number>" → "> " → <ucs2 text> ^Z → +CMGS: <mr>, OK   (per part)
///             +CMTI → AT+CMGR=i → header, text, OK → AT+CMGD=i
///             ATD<digits>; → OK … ATH (30 s after dialling, or after NO CARRIER/BUSY)
///             every `pollMs`: AT+CREG?, AT+CSQ
///
/// Every (re)start sends ESC first — a modem left in the `> ` prompt by a killed daemon would
/// otherwise take our commands for SMS text — and waits `settleMs` before ATE0.
/// One command is in flight at a time, each with its own timeout. A message is never dropped:
/// it stays queued until the modem confirms every part, through errors (retried after 5, 10, 20,
/// then every 30 s), timeouts, and the port closing mid-command (it is sent again once the port is
/// open and initialised).
public struct ModemSession: Sendable {
    public static let initCommands = ["ATE0", "AT+CMEE=2", "AT+CPIN?", "AT+CREG?", "AT+CSQ", "AT+CMGF=1",
                                      "AT+CSCS=\"UCS2\"", "AT+CSMP=17,167,0,8", "AT+CNMI=2,1,0,0,0"]
    static let ctrlZ: UInt8 = 0x1A, escape: UInt8 = 0x1B
    static let maxQueuedReads = 256
    static let maxCallAttempts = 3

    public private(set) var status: ModemStatus
    public let timings: ModemTimings
    private var parser = ATLineParser()
    private var open = false
    private var initStep = 0
    private var inFlight: InFlight?
    private var sms: [SMSJob] = []
    private var calls: [CallJob] = []
    private var activeCall: (id: String, hangUpAt: Int64)?
    private var hangUpWanted = false
    private var reads: [Int] = []
    private var deletes: [Int] = []
    private var polls: [String] = []
    private var nextPollAt: Int64?
    private var reinitAt: Int64?
    /// After ESC, answers are let pass until then (ESC may draw an `OK` that would be taken for ATE0's).
    private var settleUntil: Int64?
    /// Init failures and timeouts since the modem was last ready.
    private var failedStarts = 0

    public init(path: String, timings: ModemTimings = .standard) {
        status = ModemStatus(path: path)
        self.timings = timings
    }

    // MARK: Inputs

    /// The port was opened (or reopened after a replug): start the init sequence.
    public mutating func portOpened(at now: Int64) -> ModemStep {
        var out = ModemStep()
        open = true
        parser.reset()
        inFlight = nil
        reinitAt = nil
        settleUntil = nil
        failedStarts = 0
        startInit(at: now, into: &out, escape: true)
        return out
    }

    /// The port closed (unplugged, modem restarted, read error). Queued messages and calls stay.
    public mutating func portClosed(at now: Int64) -> ModemStep {
        var out = ModemStep()
        open = false
        parser.reset()
        if let f = inFlight, case .smsText(let id) = f.pending {
            out.events.append(.note(.warning, "modem port closed after the text of SMS \(id) was sent, before its answer: sending it again"))
        }
        inFlight = nil
        polls.removeAll()
        nextPollAt = nil
        reinitAt = nil
        settleUntil = nil
        hangUpWanted = false
        if let call = activeCall {
            activeCall = nil
            out.events.append(.callEnded(id: call.id, result: "port closed"))
        }
        set(.closed, into: &out)
        return out
    }

    public mutating func received(_ bytes: [UInt8], at now: Int64) -> ModemStep {
        var out = ModemStep()
        guard open else { return out }
        for line in parser.feed(bytes) { handle(line, at: now, into: &out) }
        pump(at: now, into: &out)
        return out
    }

    /// Timer: call at `nextDeadline` (calling early or late is harmless).
    public mutating func tick(at now: Int64) -> ModemStep {
        var out = ModemStep()
        guard open else { return out }
        if let f = inFlight, now >= f.deadline { timedOut(f, at: now, into: &out) }
        if let call = activeCall, now >= call.hangUpAt {
            activeCall?.hangUpAt = .max
            hangUpWanted = true
            out.events.append(.note(.info, "hanging up call \(call.id) \(timings.hangUpAfterMs / 1000) s after dialling"))
        }
        if let t = reinitAt, now >= t { reinitAt = nil; startInit(at: now, into: &out, escape: true) }
        if let t = settleUntil, now >= t { settleUntil = nil }
        if let t = nextPollAt, now >= t {
            nextPollAt = now + timings.pollMs
            let wanted = status.state == .ready ? ["AT+CREG?", "AT+CSQ"] : status.state == .simProblem ? ["AT+CPIN?"] : []
            for c in wanted where !polls.contains(c) { polls.append(c) }
        }
        pump(at: now, into: &out)
        return out
    }

    /// Queues an SMS (all its parts). A message with an id already queued is ignored.
    public mutating func sendSMS(_ message: OutgoingSMS) {
        guard !message.parts.isEmpty, !sms.contains(where: { $0.message.id == message.id }) else { return }
        sms.append(SMSJob(message: message))
        status.smsWaiting = sms.count
    }

    /// Queues a voice call: dialled once, hung up `hangUpAfterMs` after dialling.
    public mutating func placeCall(_ call: CallRequest) {
        guard !calls.contains(where: { $0.request.id == call.id }), activeCall?.id != call.id else { return }
        calls.append(CallJob(request: call))
    }

    /// Call after `sendSMS`/`placeCall` to start what can start now.
    public mutating func poke(at now: Int64) -> ModemStep {
        var out = ModemStep()
        pump(at: now, into: &out)
        return out
    }

    /// When `tick` must run next (monotonic ms), nil when nothing is timed.
    public var nextDeadline: Int64? {
        guard open else { return nil }
        var t = [inFlight?.deadline, activeCall.map { $0.hangUpAt }, reinitAt, nextPollAt, settleUntil].compactMap { $0 }
        if inFlight == nil, status.state == .ready {
            t += sms.map(\.notBefore)
            if activeCall == nil { t += calls.map(\.notBefore) }
        }
        return t.min()
    }

    /// Ids of queued messages, oldest first (the status's `sms_waiting`).
    public var waitingSMS: [String] { sms.map(\.message.id) }
    public var parserSkippedBytes: Int { parser.skippedBytes }
    /// Everything the session holds that input could grow: a partial line's bytes and the queued
    /// SMS, calls, reads, deletes and polls (the abuse tests bound it).
    public var heldItems: Int { parser.pendingBytes + sms.count + calls.count + reads.count + deletes.count + polls.count }

    // MARK: Lines

    private mutating func handle(_ line: ATLine, at now: Int64, into out: inout ModemStep) {
        switch line {
        case .newMessage(_, let index):
            if !reads.contains(index), reads.count < Self.maxQueuedReads { reads.append(index) }
        case .ring, .callerID:
            break
        case .registration(let stat):
            if status.registrationCode != stat {
                out.events.append(.note(stat == 1 || stat == 5 ? .info : .warning, "modem registration: \(stat)"))
            }
            status.registrationCode = stat
        case .signal(let rssi, _):
            status.rssi = rssi
        case .simState(let s):
            status.sim = s
            if inFlight?.command != "AT+CPIN?", s == "READY", status.state == .ready {
                // An unsolicited +CPIN: READY: the modem restarted behind an open port.
                requestReinit(at: now, why: "modem restarted (unsolicited +CPIN: READY)", into: &out)
            }
        case .echo(let text):
            if status.state == .ready, inFlight != nil {
                requestReinit(at: now, why: "modem echoes commands again (\(text.prefix(20))): it restarted", into: &out)
            }
        case .prompt:
            guard var f = inFlight, case .smsAddress(let id) = f.pending,
                  let job = sms.first(where: { $0.message.id == id }) else { return }
            out.writes += Array(UCS2.encode(job.message.parts[job.nextPart]).utf8) + [Self.ctrlZ]
            f.pending = .smsText(id)
            f.deadline = now + timings.submitMs
            inFlight = f
        case .messageReference(let mr):
            inFlight?.reference = mr
        case .messageHeader(_, let sender):
            inFlight?.sender = sender
        case .messageBody(let text):
            inFlight?.body = text
        case .other(let text):
            if text == "RDY", status.state == .ready { requestReinit(at: now, why: "modem restarted (RDY)", into: &out) }
        case .final(let result):
            if let call = activeCall, [.noCarrier, .busy, .noAnswer].contains(result), !isDialling {
                activeCall = nil
                hangUpWanted = true
                out.events.append(.callEnded(id: call.id, result: result.description))
                return
            }
            guard let f = inFlight else { return }
            inFlight = nil
            complete(f, result, at: now, into: &out)
            if case .cmeError(let text) = result, text.uppercased().contains("SIM"), status.state == .ready {
                // The SIM was pulled or locked while running: report it and poll until it is back.
                status.sim = text
                out.events.append(.note(.error, "modem SIM lost: \(text)"))
                set(.simProblem, into: &out)
                nextPollAt = now + timings.pollMs
            }
        }
    }

    private var isDialling: Bool { if case .dial = inFlight?.pending { return true }; return false }

    private mutating func complete(_ f: InFlight, _ r: ATResult, at now: Int64, into out: inout ModemStep) {
        switch f.pending {
        case .initStep(let i):
            initStepDone(i, r, at: now, into: &out)
        case .poll:
            if f.command == "AT+CPIN?", status.state == .simProblem {
                if r == .ok, status.sim == "READY" { startInit(at: now, into: &out, escape: false) }
                else if case .cmeError(let text) = r { status.sim = text }
            }
        case .smsAddress(let id), .smsText(let id):
            if r == .ok, case .smsText = f.pending {
                partSent(id, reference: f.reference, at: now, into: &out)
            } else {
                smsFailed(id, error: r.description, at: now, into: &out)
            }
        case .read(let index):
            if r == .ok, let sender = f.sender {
                let text = UCS2.decode(f.body ?? "") ?? f.body ?? ""
                out.events.append(.received(sender: UCS2.decodeNumber(sender), text: text))
            } else {
                out.events.append(.note(.warning, "reading SMS \(index) failed: \(r)"))
            }
            if !deletes.contains(index) { deletes.append(index) }
        case .delete(let index):
            if r != .ok { out.events.append(.note(.warning, "deleting SMS \(index) failed: \(r)")) }
        case .dial(let id):
            dialDone(id, r, at: now, into: &out)
        case .hangUp:
            if let call = activeCall {
                activeCall = nil
                out.events.append(.callEnded(id: call.id, result: "hung up"))
            }
        }
    }

    private mutating func initStepDone(_ i: Int, _ r: ATResult, at now: Int64, into out: inout ModemStep) {
        let command = Self.initCommands[i]
        if command == "AT+CPIN?" {
            if case .cmeError(let text) = r { status.sim = text }
            if r != .ok || status.sim != "READY" {
                status.lastError = "SIM: \(status.sim ?? r.description)"
                out.events.append(.note(.error, "modem SIM not ready: \(status.sim ?? r.description)"))
                set(.simProblem, into: &out)
                nextPollAt = now + timings.pollMs
                return
            }
        } else if r != .ok, command != "AT+CREG?", command != "AT+CSQ" {
            status.lastError = "\(command): \(r)"
            startFailed(first: timings.reinitMs, why: "modem refused \(command): \(r)", level: .error, at: now, into: &out)
            return
        }
        initStep = i + 1
        if initStep == Self.initCommands.count {
            failedStarts = 0
            set(.ready, into: &out)
            nextPollAt = now + timings.pollMs
        }
    }

    private mutating func partSent(_ id: String, reference: Int?, at now: Int64, into out: inout ModemStep) {
        guard let k = sms.firstIndex(where: { $0.message.id == id }) else { return }
        sms[k].references.append(reference ?? -1)
        sms[k].nextPart += 1
        if sms[k].nextPart == sms[k].message.parts.count {
            let job = sms.remove(at: k)
            status.smsSent += 1
            status.smsWaiting = sms.count
            out.events.append(.smsSent(id: id, references: job.references))
        }
    }

    private mutating func smsFailed(_ id: String, error: String, at now: Int64, into out: inout ModemStep) {
        guard let k = sms.firstIndex(where: { $0.message.id == id }) else { return }
        let delay = min(timings.retryFirstMs << Int64(min(sms[k].failures, 10)), timings.retryMaxMs)
        sms[k].failures += 1
        sms[k].notBefore = now + delay
        status.smsFailed += 1
        status.lastError = "SMS: \(error)"
        // Behind the others, so one message the network refuses does not hold up the rest.
        sms.append(sms.remove(at: k))
        out.events.append(.smsFailed(id: id, error: error, retryInMs: delay))
    }

    private mutating func dialDone(_ id: String, _ r: ATResult, at now: Int64, into out: inout ModemStep) {
        guard let k = calls.firstIndex(where: { $0.request.id == id }) else { return }
        switch r {
        case .ok:
            calls.remove(at: k)
            activeCall = (id, now + timings.hangUpAfterMs)
            status.calls += 1
            out.events.append(.callPlaced(id: id))
        case .noCarrier, .busy, .noAnswer:
            calls.remove(at: k)
            status.calls += 1
            hangUpWanted = true
            out.events.append(.callPlaced(id: id))
            out.events.append(.callEnded(id: id, result: r.description))
        default:
            calls[k].attempts += 1
            status.lastError = "call: \(r)"
            if calls[k].attempts >= Self.maxCallAttempts {
                calls.remove(at: k)
                out.events.append(.callFailed(id: id, error: r.description))
            } else {
                calls[k].notBefore = now + timings.retryFirstMs
            }
        }
    }

    private mutating func timedOut(_ f: InFlight, at now: Int64, into out: inout ModemStep) {
        inFlight = nil
        let what = "\(f.command) timed out"
        status.lastError = what
        switch f.pending {
        case .smsAddress(let id), .smsText(let id): smsFailed(id, error: "timeout", at: now, into: &out)
        case .dial(let id): dialDone(id, .error, at: now, into: &out)
        case .hangUp:
            if let call = activeCall { activeCall = nil; out.events.append(.callEnded(id: call.id, result: "ATH timed out")) }
        default: break
        }
        // A modem that does not answer is in an unknown state: cancel any prompt, start over soon.
        out.writes.append(Self.escape)
        startFailed(first: timings.reinitMs / 10, why: "modem: \(what)", level: .warning, at: now, into: &out)
    }

    /// The modem refused or ignored the init sequence (or a command): try again after `first`,
    /// doubling up to `maxReinitMs`; noted on the 1st, 2nd, 4th, 8th, … failure in a row only,
    /// so a dead modem left plugged in for a year writes a few dozen lines, not a million.
    private mutating func startFailed(first: Int64, why: String, level: DeskNote.Level, at now: Int64, into out: inout ModemStep) {
        let delay = min(first << Int64(min(failedStarts, 20)), max(first, timings.maxReinitMs))
        failedStarts += 1
        if failedStarts & (failedStarts - 1) == 0 {
            out.events.append(.note(level, "\(why); trying again in \(delay / 1000) s (failure \(failedStarts) in a row)"))
        }
        set(.unresponsive, into: &out)
        reinitAt = now + delay
    }

    // MARK: Commands

    private mutating func startInit(at now: Int64, into out: inout ModemStep, escape: Bool) {
        initStep = 0
        polls.removeAll()
        nextPollAt = nil
        // A modem that keeps failing stays `unresponsive` in the status while it is tried again.
        set(failedStarts > 0 ? .unresponsive : .initialising, into: &out)
        if escape {
            out.writes.append(Self.escape)
            settleUntil = now + timings.settleMs
        }
        pump(at: now, into: &out)
    }

    /// The modem lost its settings behind an open port (it restarted): cancel what is in flight
    /// (a queued SMS stays queued) and run the init sequence again.
    private mutating func requestReinit(at now: Int64, why: String, into out: inout ModemStep) {
        out.events.append(.note(.warning, why))
        if inFlight != nil { inFlight = nil; out.writes.append(Self.escape) }
        initStep = 0
        set(.initialising, into: &out)
    }

    private mutating func pump(at now: Int64, into out: inout ModemStep) {
        guard open, inFlight == nil, settleUntil == nil else { return }
        switch status.state {
        case .initialising, .unresponsive where reinitAt == nil:
            let c = Self.initCommands[initStep]
            issue(c, .initStep(initStep), timeout: timings.commandMs, at: now, into: &out)
        case .ready:
            if hangUpWanted {
                hangUpWanted = false
                issue("ATH", .hangUp, timeout: timings.commandMs, at: now, into: &out)
            } else if let i = deletes.first {
                deletes.removeFirst()
                issue("AT+CMGD=\(i)", .delete(i), timeout: timings.commandMs, at: now, into: &out)
            } else if let i = reads.first {
                reads.removeFirst()
                issue("AT+CMGR=\(i)", .read(i), timeout: timings.commandMs, at: now, into: &out)
            } else if let job = sms.first(where: { $0.notBefore <= now }) {
                issue("AT+CMGS=\"\(UCS2.encode(job.message.number))\"", .smsAddress(job.message.id),
                      timeout: timings.promptMs, at: now, into: &out)
            } else if activeCall == nil, let call = calls.first(where: { $0.notBefore <= now }) {
                issue("ATD\(call.request.dialString);", .dial(call.request.id), timeout: timings.dialMs, at: now, into: &out)
            } else if !polls.isEmpty {
                issue(polls.removeFirst(), .poll, timeout: timings.commandMs, at: now, into: &out)
            }
        case .simProblem:
            if !polls.isEmpty { issue(polls.removeFirst(), .poll, timeout: timings.commandMs, at: now, into: &out) }
        case .closed, .unresponsive:
            break
        }
    }

    private mutating func issue(_ command: String, _ pending: Pending, timeout: Int64, at now: Int64, into out: inout ModemStep) {
        inFlight = InFlight(pending: pending, command: command, deadline: now + timeout)
        out.writes += Array(command.utf8) + [0x0D]
    }

    private mutating func set(_ s: ModemState, into out: inout ModemStep) {
        status.smsWaiting = sms.count
        guard status.state != s else { return }
        status.state = s
        out.events.append(.stateChanged(s))
    }
}

private enum Pending: Sendable, Equatable {
    case initStep(Int)
    case poll
    case smsAddress(String)
    case smsText(String)
    case read(Int)
    case delete(Int)
    case dial(String)
    case hangUp
}

private struct InFlight: Sendable {
    var pending: Pending
    var command: String
    var deadline: Int64
    var reference: Int? = nil
    var sender: String? = nil
    var body: String? = nil
}

private struct SMSJob: Sendable {
    var message: OutgoingSMS
    var nextPart = 0
    var references: [Int] = []
    var failures = 0
    var notBefore: Int64 = 0
}

private struct CallJob: Sendable {
    var request: CallRequest
    var attempts = 0
    var notBefore: Int64 = 0
}
