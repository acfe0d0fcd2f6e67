import OnekeyCore

/// The AT dialect of CONTRACT §11 as a SIM7600/EC2x speaks it, without I/O: bytes from the
/// gateway in, replies (each with a delay) out. `ModemSimulator` puts it on a pty.
public struct SimulatedModem: Sendable {
    public enum SIM: String, Sendable { case ready = "READY", pin = "SIM PIN", missing }
    /// What a dialled call does: ring until `ATH`, or end by itself.
    public enum CallOutcome: Sendable, Equatable { case ringUntilHangUp, noCarrier(afterMs: Int), busy }

    public struct SentSMS: Sendable, Equatable {
        public var number: String
        public var text: String
        public var reference: Int
    }

    // Settings a power cycle resets.
    var echo = true
    var cmee = 0
    var textMode = false
    var ucs2 = false
    // The world.
    public var sim = SIM.ready
    public var registration = 1
    public var rssi = 20
    public var failSubmissions = 0
    public var failCode = 500
    /// Never answer a submitted text (the modem hangs mid-CMGS).
    public var holdSubmissions = false
    public var responseDelayMs = 0
    public var garbage = false
    public var callOutcome = CallOutcome.ringUntilHangUp
    // What happened.
    public private(set) var sent: [SentSMS] = []
    public private(set) var commands: [String] = []
    public private(set) var dialled: [String] = []
    public private(set) var hangUps = 0
    public private(set) var inbox: [Int: (sender: String, text: String)] = [:]
    public private(set) var heldTexts = 0
    /// Commands answered ERROR because the modem did not know them or they were malformed.
    public private(set) var rejected: [String] = []

    private var line: [UInt8] = []
    private var promptNumber: String?
    private var reference = 0
    private var callActive = false
    private var garbageSeed: UInt32 = 12345

    public init() {}

    /// A power cycle: settings back to defaults, any prompt or call gone; the SIM's inbox stays.
    public mutating func powerCycle() {
        echo = true; cmee = 0; textMode = false; ucs2 = false
        line.removeAll(); promptNumber = nil; callActive = false
    }

    /// A message arrives: stored on the SIM, announced with `+CMTI`.
    public mutating func deliver(from sender: String, text: String) -> [UInt8] {
        var i = 0
        while inbox[i] != nil { i += 1 }
        inbox[i] = (sender, text)
        return Array("\r\n+CMTI: \"SM\",\(i)\r\n".utf8)
    }

    public mutating func registrationChanged(_ stat: Int) -> [UInt8] {
        registration = stat
        return Array("\r\n+CREG: \(stat)\r\n".utf8)
    }

    /// The call's own end (NO CARRIER / BUSY), if it is still active.
    public mutating func callEnds(_ result: String) -> [UInt8] {
        guard callActive else { return [] }
        callActive = false
        return Array("\r\n\(result)\r\n".utf8)
    }

    /// Bytes from the gateway → replies, each after a delay in ms.
    public mutating func receive(_ bytes: [UInt8]) -> [(delayMs: Int, bytes: [UInt8])] {
        var out = [(Int, [UInt8])]()
        for b in bytes {
            if let number = promptNumber {
                switch b {
                case 0x1A:
                    promptNumber = nil
                    if echo { out.append((0, line + [0x1A])) }
                    out += submit(number: number, hex: String(decoding: line, as: UTF8.self))
                    line.removeAll()
                case 0x1B:
                    promptNumber = nil; line.removeAll()
                    out.append((0, result("OK")))
                default:
                    if line.count < 4096 { line.append(b) }
                }
                continue
            }
            switch b {
            case 0x0D:
                let text = String(decoding: line, as: UTF8.self)
                line.removeAll()
                guard !text.isEmpty else { continue }
                if echo { out.append((0, Array(text.utf8) + [0x0D])) }
                out += command(text)
            case 0x0A, 0x1B: continue
            default: if line.count < 4096 { line.append(b) }
            }
        }
        return out.map { ($0.0 + responseDelayMs, sprinkle($0.1)) }
    }

    private mutating func command(_ raw: String) -> [(Int, [UInt8])] {
        commands.append(raw)
        let c = raw.uppercased()
        guard c.hasPrefix("AT") else { return [(0, result("ERROR"))] }
        let body = String(raw.dropFirst(2))
        switch c {
        case "AT": return ok
        case "ATE0": echo = false; return ok
        case "ATE1": echo = true; return ok
        case "AT+CMEE=0", "AT+CMEE=1", "AT+CMEE=2": cmee = Int(String(c.last!))!; return ok
        case "AT+CPIN?":
            switch sim {
            case .ready, .pin: return [(0, info("+CPIN: \(sim.rawValue)") + result("OK"))]
            case .missing: return [(0, cme(10, "SIM not inserted"))]
            }
        case "AT+CREG?": return [(0, info("+CREG: 0,\(registration)") + result("OK"))]
        case "AT+CSQ": return [(0, info("+CSQ: \(rssi),99") + result("OK"))]
        case "AT+CMGF=1": textMode = true; return ok
        case "AT+CMGF=0": textMode = false; return ok
        case "AT+CSCS=\"UCS2\"": ucs2 = true; return ok
        case "AT+CSCS=\"GSM\"", "AT+CSCS=\"IRA\"": ucs2 = false; return ok
        case "ATH": hangUps += 1; callActive = false; return ok
        default: break
        }
        if c.hasPrefix("AT+CSMP=") || c.hasPrefix("AT+CNMI=") { return ok }
        if sim != .ready, c.hasPrefix("AT+CMG") || c.hasPrefix("ATD") { return [(0, sim == .missing ? cme(10, "SIM not inserted") : cme(11, "SIM PIN required"))] }
        if c.hasPrefix("AT+CMGS=\"") && c.hasSuffix("\"") {
            guard textMode else { return [(0, cms(302, "operation not allowed"))] }
            let field = String(body.dropFirst(7).dropLast())
            let number = ucs2 ? UCS2.decode(field) : field
            guard let number, number.count >= 3 else { rejected.append(raw); return [(0, cms(304, "invalid text mode parameter"))] }
            promptNumber = number
            return [(0, Array("\r\n> ".utf8))]
        }
        if c.hasPrefix("AT+CMGR="), let i = Int(c.dropFirst(8)) {
            guard let m = inbox[i] else { return [(0, cms(321, "invalid memory index"))] }
            let sender = ucs2 ? UCS2.encode(m.sender) : m.sender
            let text = ucs2 ? UCS2.encode(m.text) : m.text
            return [(0, info("+CMGR: \"REC UNREAD\",\"\(sender)\",\"\",\"26/11/23,09:00:00+32\"") + Array("\(text)\r\n".utf8) + result("OK"))]
        }
        if c.hasPrefix("AT+CMGD="), let i = Int(c.dropFirst(8)) {
            inbox[i] = nil
            return ok
        }
        if c.hasPrefix("ATD"), c.hasSuffix(";") {
            let number = String(c.dropFirst(3).dropLast())
            guard !number.isEmpty, number.allSatisfy({ $0 == "+" || $0.isNumber }) else { rejected.append(raw); return [(0, result("ERROR"))] }
            dialled.append(number)
            switch callOutcome {
            case .busy: return [(0, result("BUSY"))]
            case .ringUntilHangUp: callActive = true; return ok
            case .noCarrier(let ms): callActive = true; return [(0, result("OK")), (ms, result("NO CARRIER"))]
            }
        }
        rejected.append(raw)
        return [(0, cmee == 2 ? result("+CME ERROR: unknown") : result("ERROR"))]
    }

    private mutating func submit(number: String, hex: String) -> [(Int, [UInt8])] {
        guard let text = ucs2 ? UCS2.decode(hex) : hex else { return [(0, cms(304, "invalid PDU mode parameter"))] }
        if holdSubmissions { heldTexts += 1; return [] }
        if failSubmissions > 0 {
            failSubmissions -= 1
            return [(0, result("+CMS ERROR: \(failCode)"))]
        }
        reference = (reference + 1) % 256
        sent.append(SentSMS(number: number, text: text, reference: reference))
        return [(0, info("+CMGS: \(reference)") + result("OK"))]
    }

    private var ok: [(Int, [UInt8])] { [(0, result("OK"))] }
    private func info(_ s: String) -> [UInt8] { Array("\r\n\(s)\r\n".utf8) }
    private func result(_ s: String) -> [UInt8] { Array("\r\n\(s)\r\n".utf8) }
    private func cme(_ code: Int, _ text: String) -> [UInt8] {
        result(cmee == 2 ? "+CME ERROR: \(text)" : cmee == 1 ? "+CME ERROR: \(code)" : "ERROR")
    }
    private func cms(_ code: Int, _ text: String) -> [UInt8] {
        result(cmee == 2 ? "+CMS ERROR: \(text)" : cmee == 1 ? "+CMS ERROR: \(code)" : "ERROR")
    }

    /// With `garbage` on: line noise (controls, 0xFF, NUL) between the lines of a reply.
    private mutating func sprinkle(_ bytes: [UInt8]) -> [UInt8] {
        guard garbage else { return bytes }
        var out = [UInt8]()
        for b in bytes {
            out.append(b)
            if b == 0x0A {
                garbageSeed = garbageSeed &* 1_103_515_245 &+ 12345
                out += [[0x00], [0xFF, 0xFE], [0x07, 0x80], [0x11]][Int(garbageSeed >> 16) % 4]
            }
        }
        return out
    }
}
