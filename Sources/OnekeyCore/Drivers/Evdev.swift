/// USB HID panic buttons and foot switches that present as Linux input devices. The gateway
/// grabs the device (EVIOCGRAB) so its keys reach nobody else, and reads `struct input_event`
/// records (64-bit Linux layout, little-endian):
///
///     offset  0        8        16     18     20       24
///             +--------+--------+------+------+--------+
///             | tv_sec | tv_usec| type | code | value  |
///             +--------+--------+------+------+--------+
///             type 1 = EV_KEY; value 1 = key down, 0 = up, 2 = autorepeat
///
/// A key-down is a `panic` (CONTRACT §4); key-ups, autorepeats and other event types (EV_SYN,
/// EV_MSC) are valid input and simply ignored. The event's `code` is the key code in decimal.
///
/// Sample records (test vectors, Tests/OnekeyCoreTests/EvdevTests.swift): KEY_A (30) down
///     00.. 00 | 00.. 00 | 01 00 | 1e 00 | 01 00 00 00   → panic, code "30"
/// and its SYN_REPORT `00 00 | 00 00 | 00 00 00 00` → ignored.
public struct EvdevDecoder: FrameDecoder {
    public static let recordSize = 24
    public let driver = DriverKind.evdev
    /// The device's enrolment address: its udev ID_SERIAL, or its /dev path.
    public let address: String
    private var buffer: [UInt8] = []

    public init(address: String) { self.address = address }

    public var pendingBytes: Int { buffer.count }

    public mutating func feed(_ bytes: [UInt8]) -> DecodeResult {
        buffer += bytes
        var result = DecodeResult()
        var p = 0
        while buffer.count - p >= Self.recordSize {
            let r = Array(buffer[p..<(p + Self.recordSize)])
            p += Self.recordSize
            let type = UInt16(r[16]) | UInt16(r[17]) << 8
            let code = UInt16(r[18]) | UInt16(r[19]) << 8
            let value = Int32(bitPattern: UInt32(r[20]) | UInt32(r[21]) << 8 | UInt32(r[22]) << 16 | UInt32(r[23]) << 24)
            guard type == 1, value == 1 else { continue }
            result.items.append(.frame(DecodedFrame(driver: .evdev, address: address, code: String(code), kind: .panic, raw: r)))
        }
        buffer.removeFirst(p)
        return result
    }

    /// A record as the kernel writes it (for tests).
    public static func record(type: UInt16, code: UInt16, value: Int32, seconds: UInt64 = 0) -> [UInt8] {
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        return le(seconds) + le(UInt64(0)) + le(type) + le(code) + le(value)
    }
}
