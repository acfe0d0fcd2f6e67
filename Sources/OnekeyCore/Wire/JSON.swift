/// A small JSON value with ordered objects: payloads print their fields in the order written,
/// which keeps pages and alerts readable in `mosquitto_sub` and the journal.
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    public static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.double(x), .double(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public subscript(key: String) -> JSON? {
        if case .object(let fields) = self { return fields.first { $0.0 == key }?.1 }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var intValue: Int64? {
        switch self {
        case .int(let v): return v
        case .double(let d) where d == d.rounded() && abs(d) < 9e15: return Int64(d)
        default: return nil
        }
    }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var arrayValue: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }

    public static func optional(_ s: String?) -> JSON { s.map { .string($0) } ?? .null }
    public static func optional(_ t: Timestamp?) -> JSON { t.map { .string($0.rfc3339) } ?? .null }

    // MARK: Serialising

    public var bytes: [UInt8] { var out = [UInt8](); out.reserveCapacity(256); write(into: &out); return out }
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let v): out.append(contentsOf: String(v).utf8)
        case .double(let d): out.append(contentsOf: (d.isFinite ? "\(d)" : "null").utf8)
        case .string(let s): JSON.writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let fields):
            out.append(UInt8(ascii: "{"))
            for (i, (k, v)) in fields.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSON.writeString(k, into: &out)
                out.append(UInt8(ascii: ":"))
                v.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Runs without escapes are appended whole (a byte-at-a-time append checked capacity and
    /// uniqueness per byte: measured the largest single cost of building a press's messages).
    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { u in
            var start = 0
            for i in 0..<u.count {
                let c = u[i]
                guard c < 32 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: u[start..<i]))
                start = i + 1
                switch c {
                case UInt8(ascii: "\""): out += [92, 34]
                case UInt8(ascii: "\\"): out += [92, 92]
                case 10: out += [92, 110]
                case 13: out += [92, 114]
                case 9: out += [92, 116]
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    out += [92, 117, 48, 48, hex[Int(c >> 4)], hex[Int(c & 15)]]
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: u[start...]))
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: Parsing

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var offset: Int
        public var reason: String
        public var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    public static func parse(_ text: String) throws(ParseError) -> JSON { try parse(Array(text.utf8)) }

    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> JSON {
        var p = Parser(b: bytes)
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == bytes.count else { throw ParseError(offset: p.i, reason: "trailing characters") }
        return v
    }

    struct Parser {
        let b: [UInt8]
        var i = 0

        mutating func skipSpace() {
            while i < b.count, b[i] == 32 || b[i] == 9 || b[i] == 10 || b[i] == 13 { i += 1 }
        }

        func fail(_ reason: String) -> ParseError { ParseError(offset: i, reason: reason) }

        mutating func literal(_ word: String, _ v: JSON) throws(ParseError) -> JSON {
            let w = Array(word.utf8)
            guard i + w.count <= b.count, Array(b[i..<(i + w.count)]) == w else { throw fail("unexpected character") }
            i += w.count
            return v
        }

        mutating func value(depth: Int) throws(ParseError) -> JSON {
            guard depth < 64 else { throw fail("nested too deeply") }
            guard i < b.count else { throw fail("unexpected end") }
            switch b[i] {
            case UInt8(ascii: "n"): return try literal("null", .null)
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "["):
                i += 1; skipSpace()
                var items = [JSON]()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    skipSpace()
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < b.count else { throw fail("unterminated array") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                    throw fail("expected , or ]")
                }
            case UInt8(ascii: "{"):
                i += 1; skipSpace()
                var fields = [(String, JSON)]()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(fields) }
                while true {
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                    let k = try string()
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected :") }
                    i += 1; skipSpace()
                    fields.append((k, try value(depth: depth + 1)))
                    skipSpace()
                    guard i < b.count else { throw fail("unterminated object") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "}") { i += 1; return .object(fields) }
                    throw fail("expected , or }")
                }
            default: return try number()
            }
        }

        mutating func number() throws(ParseError) -> JSON {
            let start = i
            if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
            var isInt = true
            var digits = 0
            while i < b.count, (48...57).contains(b[i]) { i += 1; digits += 1 }
            guard digits > 0 else { throw fail("unexpected character") }
            if i < b.count, b[i] == UInt8(ascii: ".") {
                isInt = false; i += 1
                var frac = 0
                while i < b.count, (48...57).contains(b[i]) { i += 1; frac += 1 }
                guard frac > 0 else { throw fail("bad number") }
            }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                isInt = false; i += 1
                if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                var exp = 0
                while i < b.count, (48...57).contains(b[i]) { i += 1; exp += 1 }
                guard exp > 0 else { throw fail("bad number") }
            }
            let text = String(decoding: b[start..<i], as: UTF8.self)
            if isInt, let v = Int64(text) { return .int(v) }
            guard let d = Double(text), d.isFinite else { throw fail("number out of range") }
            return .double(d)
        }

        mutating func hex4() throws(ParseError) -> UInt32 {
            guard i + 4 <= b.count else { throw fail("bad escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = b[i]; i += 1
                let d: UInt32
                switch c {
                case 48...57: d = UInt32(c - 48)
                case 65...70: d = UInt32(c - 55)
                case 97...102: d = UInt32(c - 87)
                default: throw fail("bad escape")
                }
                v = v << 4 | d
            }
            return v
        }

        mutating func string() throws(ParseError) -> String {
            i += 1  // opening quote
            var out = [UInt8]()
            while true {
                guard i < b.count else { throw fail("unterminated string") }
                let c = b[i]; i += 1
                switch c {
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard i < b.count else { throw fail("unterminated string") }
                    let e = b[i]; i += 1
                    switch e {
                    case UInt8(ascii: "\""): out.append(34)
                    case UInt8(ascii: "\\"): out.append(92)
                    case UInt8(ascii: "/"): out.append(47)
                    case UInt8(ascii: "b"): out.append(8)
                    case UInt8(ascii: "f"): out.append(12)
                    case UInt8(ascii: "n"): out.append(10)
                    case UInt8(ascii: "r"): out.append(13)
                    case UInt8(ascii: "t"): out.append(9)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800..<0xDC00).contains(scalar), i + 6 <= b.count, b[i] == 92, b[i + 1] == 117 {
                            i += 2
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw fail("bad surrogate") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let u = Unicode.Scalar(scalar) else { throw fail("bad escape") }
                        out += Array(String(Character(u)).utf8)
                    default: throw fail("bad escape")
                    }
                case 0..<32: throw fail("control character in string")
                default: out.append(c)
                }
            }
        }
    }
}

extension Array where Element == UInt8 {
    /// Lower-case hex, as in the `raw` field of events.
    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](); out.reserveCapacity(count * 2)
        for b in self { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
