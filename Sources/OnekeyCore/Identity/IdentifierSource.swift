/// Issues ids that are unique, sortable by time and never reused (CONTRACT §5):
/// 26 characters of Crockford base32, a 48-bit millisecond time then 80 bits that
/// start random and count up within one millisecond (the ULID layout).
///
/// Monotonic across restarts: the daemon seeds it with the greatest id it ever stored,
/// so a wall clock stepped backwards still yields ids that sort after every old one.
public struct IdentifierSource: Sendable {
    private var lastMillis: UInt64 = 0
    private var lastRandomHi: UInt16 = 0
    private var lastRandomLo: UInt64 = 0
    private var generator = PooledSystemRandom()

    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    public init() {}

    /// Makes every later id sort after `id` (an id this source issued, possibly in an earlier run).
    public mutating func advance(past id: String) {
        guard let (ms, hi, lo) = Self.decode(id) else { return }
        if ms > lastMillis || (ms == lastMillis && (hi, lo) > (lastRandomHi, lastRandomLo)) {
            lastMillis = ms; lastRandomHi = hi; lastRandomLo = lo
        }
    }

    public mutating func next(at time: Timestamp) -> String {
        let ms = UInt64(max(0, time.milliseconds))
        if ms > lastMillis {
            lastMillis = ms
            lastRandomHi = UInt16.random(in: 0...0x7FFF, using: &generator)  // headroom for counting up
            lastRandomLo = UInt64.random(in: 0...UInt64.max, using: &generator)
        } else {
            // Same millisecond, or the clock went back: count up from the last id.
            if lastRandomLo == UInt64.max { lastRandomLo = 0; lastRandomHi &+= 1 } else { lastRandomLo += 1 }
        }
        return Self.encode(lastMillis, lastRandomHi, lastRandomLo)
    }

    /// The 10-character time part of the ids issued at `t`: it sorts at or before every id issued
    /// at or after `t` (the store bounds its scans of time-sorted ids with it).
    public static func prefix(at t: Timestamp) -> String {
        var out = [UInt8](repeating: 0, count: 10)
        writeTime(UInt64(max(0, t.milliseconds)), into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func writeTime(_ ms: UInt64, into out: inout [UInt8]) {
        var t = ms
        for i in stride(from: 9, through: 0, by: -1) { out[i] = alphabet[Int(t & 31)]; t >>= 5 }
    }

    static func encode(_ ms: UInt64, _ hi: UInt16, _ lo: UInt64) -> String {
        var out = [UInt8](repeating: 0, count: 26)
        writeTime(ms, into: &out)
        // 80 random bits: hi (16) then lo (64), as 16 base32 digits.
        var l = lo, h = UInt64(hi)
        for i in stride(from: 25, through: 10, by: -1) {
            out[i] = alphabet[Int(l & 31)]
            l = (l >> 5) | ((h & 31) << 59)
            h >>= 5
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The issue time (milliseconds) an id carries; at or after the wall clock when it was issued.
    public static func milliseconds(of id: String) -> Int64? { decode(id).map { Int64($0.0) } }

    static func decode(_ id: String) -> (UInt64, UInt16, UInt64)? {
        let b = Array(id.utf8)
        guard b.count == 26 else { return nil }
        var digits = [UInt64]()
        for c in b {
            guard let v = alphabet.firstIndex(of: c) else { return nil }
            digits.append(UInt64(v))
        }
        var ms: UInt64 = 0
        for i in 0..<10 { ms = (ms << 5) | digits[i] }
        var hi: UInt64 = 0, lo: UInt64 = 0
        for i in 10..<26 {
            hi = (hi << 5) | (lo >> 59)
            lo = (lo << 5) | digits[i]
        }
        return (ms, UInt16(truncatingIfNeeded: hi), lo)
    }
}
