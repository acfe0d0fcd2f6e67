/// Sur-Gard MLR2-compatible alarm receiver, automation (computer) output. Default 9600 8N1;
/// many installations use 7E1. The receiver answers Contact ID calls from dialers and
/// social-alarm units and forwards each event as one line ending in DC4 (0x14).
///
///     Contact ID event (20 characters + DC4):
///
///       5 RR L ␠ 18 AAAA Q XYZ GG CCC <DC4>
///       │ │  │    │  │    │ │   │  └─ zone or user
///       │ │  │    │  │    │ │   └──── group / partition
///       │ │  │    │  │    │ └──────── event code (100 medical, 120 panic, 406 cancel, …)
///       │ │  │    │  │    └────────── qualifier: E new event, R restore, P previous
///       │ │  │    │  └─────────────── account (matches a device `address`, 4 hex digits)
///       │ │  │    └────────────────── 18 = Contact ID
///       │ │  └─────────────────────── line number
///       │ └────────────────────────── receiver number
///       └──────────────────────────── protocol 5 = Contact ID
///
///     Heartbeat (supervision of the link): "1011" + 11 spaces + "@" + 4 spaces + DC4
///
/// Sample messages (the decoder's test vectors, Tests/OnekeyCoreTests/SurGardTests.swift):
///
///     "5011 181234E12101001\u{14}"   account 1234, panic (121), new event
///     "5011 18ABCDE10001003\u{14}"   account ABCD, medical (100)
///     "5011 181234R12101001\u{14}"   account 1234, restore of the panic
///     "1011           @    \u{14}"   heartbeat
///
/// Every complete message is answered: a Contact ID event with ACK (0x06) only after the gateway
/// has durably stored it (the `reply` item follows the frame), a heartbeat with ACK at once, and
/// anything unparseable with NAK (0x15), after which the receiver sends it again.
public struct SurGardDecoder: FrameDecoder {
    public static let dc4: UInt8 = 0x14
    public static let ack: [UInt8] = [0x06]
    public static let nak: [UInt8] = [0x15]
    /// Longest line we hold while waiting for DC4; longer runs are noise.
    static let maxLine = 128

    public let driver = DriverKind.surgard
    private var buffer: [UInt8] = []

    public init() {}

    public var pendingBytes: Int { buffer.count }

    public mutating func feed(_ bytes: [UInt8]) -> DecodeResult {
        var result = DecodeResult()
        for b in bytes {
            if b != Self.dc4 {
                buffer.append(b)
                if buffer.count > Self.maxLine {
                    result.skippedBytes += buffer.count
                    buffer.removeAll()
                }
                continue
            }
            var line = buffer
            buffer.removeAll()
            // Receivers may put CR/LF between messages.
            while let first = line.first, first == 0x0D || first == 0x0A { line.removeFirst() }
            switch Self.parse(line) {
            case .heartbeat:
                result.items.append(.reply(Self.ack))
            case .event(let frame):
                result.items.append(.frame(frame))
                result.items.append(.reply(Self.ack))
            case .invalid:
                result.skippedBytes += line.count + 1
                result.items.append(.reply(Self.nak))
            }
        }
        return result
    }

    enum Parsed: Equatable { case heartbeat, event(DecodedFrame), invalid }

    static func parse(_ line: [UInt8]) -> Parsed {
        let heartbeat = Array("1011           @    ".utf8)
        if line == heartbeat { return .heartbeat }
        guard line.count == 20, line[0] == UInt8(ascii: "5"), line[4] == UInt8(ascii: " "),
              line[5] == UInt8(ascii: "1"), line[6] == UInt8(ascii: "8") else { return .invalid }
        // Bytes, not Characters: a CR LF or a multi-byte sequence inside the 20 bytes must be
        // an invalid line (NAK), never an index out of range.
        func isHex(_ b: UInt8) -> Bool { (48...57).contains(b) || (65...70).contains(b) || (97...102).contains(b) }
        func hex(_ r: Range<Int>) -> Bool { line[r].allSatisfy(isHex) }
        func digits(_ r: Range<Int>) -> Bool { line[r].allSatisfy { (48...57).contains($0) } }
        let qualifier = line[11]
        guard hex(1..<4), hex(7..<11), Array("ERP".utf8).contains(qualifier), digits(12..<15), hex(15..<17), hex(17..<20) else { return .invalid }
        let account = String(decoding: line[7..<11], as: UTF8.self).uppercased()
        let code = String(decoding: line[12..<15], as: UTF8.self)
        var kind = kind(code)
        if qualifier == UInt8(ascii: "R") && kind != .unknown && kind != .test { kind = .restore }
        return .event(DecodedFrame(driver: .surgard, address: account, code: code, kind: kind, raw: line + [dc4]))
    }

    /// Contact ID event code → kind (CONTRACT §4).
    public static func kind(_ code: String) -> EventKind {
        switch code {
        case "100": return .medical
        case "101", "120", "121", "122", "123": return .panic
        case "406": return .cancel
        case "302", "384": return .lowBattery
        case "137", "383": return .tamper
        case "381": return .supervisionLoss
        case "602": return .test
        case "641": return .inactivity
        default: return .unknown
        }
    }
}
