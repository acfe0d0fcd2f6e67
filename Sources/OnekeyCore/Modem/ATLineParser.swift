/// What a modem says on its AT port (3GPP TS 27.007 / 27.005), one item per line.
///
///     modem → gateway (verbose results, `ATV1`):
///     \r\nOK\r\n                           final result of the command in flight
///     \r\n+CME ERROR: SIM not inserted\r\n final result (AT+CMEE=2: verbose text)
///     \r\n> ␠                              the CMGS prompt: no line end, text is wanted now
///     \r\n+CMGR: "REC UNREAD","002B…",,"…"\r\n0031\r\n   header, then the text (UCS2 hex)
///     \r\n+CMTI: "SM",3\r\n                unsolicited, may arrive between any two lines
///     ATE0\r                               the modem's echo of our command (until ATE0)
///
/// Lines end at CR or LF (echoes end at CR alone); empty lines are skipped. Bytes that no
/// modem sends in text mode (controls other than CR/LF, and bytes ≥ 0x7F) are skipped and
/// counted, and so are lines longer than `maxLineBytes`: the parser's memory is bounded.
public enum ATLine: Sendable, Equatable {
    case final(ATResult)
    /// `> `: the modem waits for the SMS text.
    case prompt
    /// The modem echoing a command line back (echo is on until `ATE0`).
    case echo(String)
    /// `+CPIN: READY` / `SIM PIN` / …
    case simState(String)
    /// `+CREG:` in either form (response `n,stat` or unsolicited `stat`): 3GPP `<stat>`.
    case registration(Int)
    /// `+CSQ: <rssi>,<ber>`.
    case signal(rssi: Int, ber: Int)
    /// `+CMGS: <mr>`: the network took the message.
    case messageReference(Int)
    /// `+CMGR: <stat>,<sender>,…`; the sender as the modem wrote it (UCS2 hex in UCS2 mode).
    case messageHeader(status: String, sender: String)
    /// The line after a `+CMGR:` header: the message text as the modem wrote it.
    case messageBody(String)
    /// `+CMTI: <mem>,<index>` (unsolicited): a new message is stored.
    case newMessage(storage: String, index: Int)
    /// `RING` (unsolicited): an incoming call.
    case ring
    /// `+CLIP: <number>,…` (unsolicited): the incoming caller.
    case callerID(String)
    /// Any other information line.
    case other(String)

    /// Unsolicited result codes: the modem may send them between any two lines.
    public var isUnsolicited: Bool {
        switch self {
        case .newMessage, .ring, .callerID: return true
        default: return false
        }
    }
}

/// Final result codes: each ends the command in flight.
public enum ATResult: Sendable, Equatable, CustomStringConvertible {
    case ok
    case error
    case cmeError(String)
    case cmsError(String)
    case noCarrier
    case busy
    case noAnswer
    case noDialtone

    public var isSuccess: Bool { self == .ok }

    public var description: String {
        switch self {
        case .ok: return "OK"
        case .error: return "ERROR"
        case .cmeError(let t): return "+CME ERROR: \(t)"
        case .cmsError(let t): return "+CMS ERROR: \(t)"
        case .noCarrier: return "NO CARRIER"
        case .busy: return "BUSY"
        case .noAnswer: return "NO ANSWER"
        case .noDialtone: return "NO DIALTONE"
        }
    }
}

/// Bytes in, `ATLine`s out. Keeps at most `maxLineBytes` of an unfinished line.
public struct ATLineParser: Sendable {
    public static let maxLineBytes = 1024

    private var line: [UInt8] = []
    private var overlong = false
    private var bodyExpected = false
    /// Bytes skipped: controls, non-ASCII, and the bytes of over-long lines.
    public private(set) var skippedBytes = 0
    /// Lines dropped because they grew past `maxLineBytes`.
    public private(set) var overlongLines = 0

    public init() {}

    /// Bytes held for an unfinished line.
    public var pendingBytes: Int { line.count }

    /// Forgets an unfinished line (the port was closed and opened again).
    public mutating func reset() { line.removeAll(keepingCapacity: true); overlong = false; bodyExpected = false }

    public mutating func feed(_ bytes: [UInt8]) -> [ATLine] {
        var out = [ATLine]()
        for b in bytes {
            switch b {
            case 0x0D, 0x0A:
                if overlong { overlong = false; overlongLines += 1; skippedBytes += 1; continue }
                if !line.isEmpty { out.append(finishLine()) }
            case 0x20...0x7E:
                if overlong { skippedBytes += 1; continue }
                if line.count >= Self.maxLineBytes {
                    skippedBytes += line.count + 1
                    line.removeAll(keepingCapacity: true)
                    overlong = true
                    continue
                }
                line.append(b)
                if line.count == 2, line[0] == 0x3E, line[1] == 0x20 {
                    line.removeAll(keepingCapacity: true)
                    out.append(.prompt)
                }
            default:
                skippedBytes += 1
            }
        }
        return out
    }

    private mutating func finishLine() -> ATLine {
        let text = String(decoding: line, as: UTF8.self)
        line.removeAll(keepingCapacity: true)
        if bodyExpected {
            bodyExpected = false
            if Self.finalResult(text) == nil { return .messageBody(text) }
        }
        let parsed = Self.classify(text)
        if case .messageHeader = parsed { bodyExpected = true }
        return parsed
    }

    static func finalResult(_ text: String) -> ATResult? {
        switch text {
        case "OK": return .ok
        case "ERROR": return .error
        case "NO CARRIER": return .noCarrier
        case "BUSY": return .busy
        case "NO ANSWER": return .noAnswer
        case "NO DIALTONE": return .noDialtone
        default:
            if let v = value(text, "+CME ERROR:") { return .cmeError(v) }
            if let v = value(text, "+CMS ERROR:") { return .cmsError(v) }
            return nil
        }
    }

    /// One complete line (without its end) → what it means.
    public static func classify(_ text: String) -> ATLine {
        if let r = finalResult(text) { return .final(r) }
        if text == "RING" { return .ring }
        if text == ">" { return .prompt }
        if text.utf8.count >= 2, text.uppercased().hasPrefix("AT") { return .echo(text) }
        if let v = value(text, "+CPIN:") { return .simState(v) }
        if let v = value(text, "+CSQ:") {
            let f = fields(v)
            if f.count >= 2, let rssi = Int(f[0]), let ber = Int(f[1]) { return .signal(rssi: rssi, ber: ber) }
        }
        if let v = value(text, "+CREG:") {
            let f = fields(v)
            // Response `n,stat[,lac,ci]` has an unquoted second field; the URC `stat[,lac,ci]` does not.
            if f.count >= 2, !v.split(separator: ",", omittingEmptySubsequences: false)[1].contains("\""), let stat = Int(f[1]) {
                return .registration(stat)
            }
            if let first = f.first, let stat = Int(first) { return .registration(stat) }
        }
        if let v = value(text, "+CMGS:"), let mr = Int(fields(v).first ?? "") { return .messageReference(mr) }
        if let v = value(text, "+CMTI:") {
            let f = fields(v)
            if f.count >= 2, let i = Int(f[1]) { return .newMessage(storage: f[0], index: i) }
        }
        if let v = value(text, "+CMGR:") {
            let f = fields(v)
            if f.count >= 2 { return .messageHeader(status: f[0], sender: f[1]) }
        }
        if let v = value(text, "+CLIP:"), let number = fields(v).first { return .callerID(number) }
        return .other(text)
    }

    /// The text after `prefix` with leading spaces removed, or nil when the line has another prefix.
    static func value(_ text: String, _ prefix: String) -> String? {
        guard text.hasPrefix(prefix) else { return nil }
        return String(text.dropFirst(prefix.count).drop { $0 == " " })
    }

    /// Comma-separated fields, quotes removed (commas inside quotes kept), spaces trimmed.
    static func fields(_ s: String) -> [String] {
        var out = [String](), cur = "", quoted = false
        for c in s {
            if c == "\"" { quoted.toggle(); continue }
            if c == ",", !quoted { out.append(cur.trimmingSpaces); cur = ""; continue }
            cur.append(c)
        }
        out.append(cur.trimmingSpaces)
        return out
    }

    /// Fuzz entry point (libFuzzer): arbitrary bytes, split at every length the input suggests,
    /// through the parser and a session; must never crash, and memory stays bounded.
    public static func fuzz(_ bytes: [UInt8]) {
        var parser = ATLineParser()
        var session = ModemSession(path: "/dev/fuzz", timings: .standard)
        _ = session.portOpened(at: 0)
        session.sendSMS(OutgoingSMS(id: "fuzz", number: "+8613800138000", parts: ["测试"]))
        session.placeCall(CallRequest(id: "fuzz-call", number: "+8613800138000"))
        let step = max(1, Int(bytes.first ?? 1) % 17)
        var i = 0, now: Int64 = 0
        while i < bytes.count {
            let chunk = Array(bytes[i..<min(bytes.count, i + step)])
            _ = parser.feed(chunk)
            _ = session.received(chunk, at: now)
            now += Int64(chunk.count) * 997
            _ = session.tick(at: now)
            i += step
        }
        precondition(parser.pendingBytes <= maxLineBytes)
        _ = session.status.json
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
