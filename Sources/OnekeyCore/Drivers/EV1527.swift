/// EV1527 / PT2262 433/315 MHz UART receiver modules (the common "RX480E"-style boards with
/// a serial output). Default line settings 9600 8N1.
///
///     byte:   0    1    2    3    4    5
///           +----+----+----+----+----+----+
///           | FD | A2 | A1 | A0 | W  | DF |
///           +----+----+----+----+----+----+
///                 \_____________/
///                 24 received bits: AAAA AAAA AAAA AAAA AAAA KKKK
///                 A = 20-bit EV1527 address (5 hex digits), K = key nibble
///           W  = pulse width of the received code (ignored)
///
/// The module repeats the frame every few tens of ms while the transmitter sends. There is no
/// checksum: only enrolled addresses raise alerts, anything else is an `unknown_device` event.
///
/// Sample frames (the decoder's test vectors, see Tests/OnekeyCoreTests/EV1527Tests.swift):
///
///     FD A1 B2 C8 1E DF   address A1B2C, key 8 (panic by default)
///     FD A1 B2 C4 1E DF   address A1B2C, key 4 (cancel)
///     FD 0F 42 41 22 DF   address 0F424, key 1 (test)
///
/// Resynchronisation: a byte that does not start a complete `FD … DF` frame is skipped and
/// counted, so garbage, truncated frames and line noise cost at most the frame they overlap;
/// the module's own repeats deliver the press.
public struct EV1527Decoder: FrameDecoder {
    public static let start: UInt8 = 0xFD
    public static let end: UInt8 = 0xDF
    public static let frameLength = 6

    public let driver = DriverKind.ev1527
    private var buffer: [UInt8] = []

    public init() {}

    public var pendingBytes: Int { buffer.count }

    public mutating func feed(_ bytes: [UInt8]) -> DecodeResult {
        buffer += bytes
        var result = DecodeResult()
        var p = 0
        while p < buffer.count {
            if buffer[p] != Self.start { result.skippedBytes += 1; p += 1; continue }
            if buffer.count - p < Self.frameLength { break }  // wait for the rest
            if buffer[p + 5] != Self.end { result.skippedBytes += 1; p += 1; continue }
            let raw = Array(buffer[p..<(p + Self.frameLength)])
            result.items.append(.frame(Self.frame(raw)))
            p += Self.frameLength
        }
        buffer.removeFirst(p)
        return result
    }

    static func frame(_ raw: [UInt8]) -> DecodedFrame {
        let bits = UInt32(raw[1]) << 16 | UInt32(raw[2]) << 8 | UInt32(raw[3])
        let address = String(bits >> 4, radix: 16, uppercase: true)
        let padded = String(repeating: "0", count: 5 - address.count) + address
        return DecodedFrame(driver: .ev1527, address: padded, code: String(bits & 0xF, radix: 16, uppercase: true), raw: raw)
    }

    /// The frame a transmitter with `address` (5 hex digits) sends for `key`; used by tests,
    /// the benchmark and the demo's virtual button.
    public static func encode(address: String, key: UInt8, width: UInt8 = 0x1E) -> [UInt8]? {
        guard address.utf8.count == 5, let a = UInt32(address, radix: 16), key < 16 else { return nil }
        let bits = a << 4 | UInt32(key)
        return [start, UInt8(bits >> 16 & 0xFF), UInt8(bits >> 8 & 0xFF), UInt8(bits & 0xFF), width, end]
    }
}
