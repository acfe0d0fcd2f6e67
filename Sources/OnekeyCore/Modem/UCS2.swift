/// Text and numbers as they travel in `AT+CSCS="UCS2"` mode: UTF-16BE code units, each as four
/// upper-case hex digits (`陈` → `9648`; non-BMP characters as a surrogate pair: `😀` → `D83DDE00`).
public enum UCS2 {
    private static let digits = Array("0123456789ABCDEF".utf8)

    public static func encode(_ text: String) -> String {
        var out = [UInt8]()
        out.reserveCapacity(text.utf16.count * 4)
        for unit in text.utf16 {
            for shift in stride(from: 12, through: 0, by: -4) { out.append(digits[Int((unit >> UInt16(shift)) & 0xF)]) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// nil unless `hex` is a whole number of 4-digit groups of hex digits. Lone surrogates
    /// become U+FFFD (a modem may cut a message inside a pair).
    public static func decode(_ hex: String) -> String? {
        let b = Array(hex.utf8)
        guard b.count % 4 == 0 else { return nil }
        var units = [UInt16]()
        units.reserveCapacity(b.count / 4)
        var i = 0
        while i < b.count {
            var v: UInt16 = 0
            for k in 0..<4 {
                guard let d = nibble(b[i + k]) else { return nil }
                v = v << 4 | UInt16(d)
            }
            units.append(v)
            i += 4
        }
        return String(decoding: units, as: UTF16.self)
    }

    /// The number of UCS2 code units `text` takes in an SMS (a surrogate pair counts two).
    public static func units(_ text: String) -> Int { text.utf16.count }

    /// A sender as the modem reported it: UCS2 hex in UCS2 mode, plain digits otherwise.
    public static func decodeNumber(_ field: String) -> String {
        if field.utf8.count >= 4, let s = decode(field), s.allSatisfy({ $0 == "+" || $0.isASCII && $0.isNumber }) { return s }
        return field
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 65...70: return c - 55
        case 97...102: return c - 87
        default: return nil
        }
    }
}
