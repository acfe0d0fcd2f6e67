/// A TOML reader that remembers the line of every key, so configuration errors can say
/// `FILE:LINE: message`. It reads the TOML that a gateway config uses: tables, arrays of
/// tables (also nested, `[[policy.step]]`), dotted and quoted keys, basic and literal strings,
/// integers, floats, booleans, arrays and inline tables. Dates and multi-line strings are
/// refused with a clear error rather than misread.
public final class TOMLTable {
    public private(set) var entries: [(key: String, value: TOMLValue)] = []
    /// Key → position in `entries`, built only once a table holds many keys (the root, a big
    /// inline table): the 20,000 small tables of a district file are scanned, which is cheaper
    /// than a dictionary each, and lookups stay O(1) where it matters.
    private var positions: [String: Int]?
    static let indexFrom = 16
    /// Line of the `[header]` (or of the key, for inline and implicit tables); 0 for the root.
    public let line: Int
    /// Defined explicitly by a header (a second `[x]` is an error).
    var explicit = false
    var isInline = false

    init(line: Int) { self.line = line }

    public subscript(key: String) -> TOMLValue? {
        if let positions { return positions[key].map { entries[$0].value } }
        return entries.first { $0.key == key }?.value
    }

    func set(_ key: String, _ value: TOMLValue) {
        if positions == nil && entries.count + 1 >= Self.indexFrom {
            positions = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($0.element.key, $0.offset) })
        }
        positions?[key] = entries.count
        entries.append((key, value))
    }
}

/// The tables of one `[[name]]` array, shared by reference: each further header appends in
/// O(1) instead of copying every table read so far (a district file has 20,000 `[[device]]`).
public final class TOMLTableList: RandomAccessCollection {
    public private(set) var tables: [TOMLTable]
    init(_ first: TOMLTable) { tables = [first] }
    func append(_ t: TOMLTable) { tables.append(t) }
    public var startIndex: Int { 0 }
    public var endIndex: Int { tables.count }
    public subscript(i: Int) -> TOMLTable { tables[i] }
}

public struct TOMLValue {
    public enum Kind {
        case string(String)
        case integer(Int64)
        case float(Double)
        case boolean(Bool)
        case array([TOMLValue])
        case table(TOMLTable)
        /// An array made by `[[name]]` headers.
        case tableArray(TOMLTableList)
    }
    public var kind: Kind
    public var line: Int

    public var typeName: String {
        switch kind {
        case .string: return "a string"
        case .integer: return "an integer"
        case .float: return "a float"
        case .boolean: return "a boolean"
        case .array: return "an array"
        case .table: return "a table"
        case .tableArray: return "an array of tables"
        }
    }
}

public struct TOMLError: Error, Sendable {
    public var line: Int
    public var message: String
}

public enum TOML {
    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        var p = TOMLParser(b: Array(text.utf8))
        return try p.document()
    }
}

struct TOMLParser {
    let b: [UInt8]
    var i = 0
    var line = 1
    /// Arrays and inline tables open around the value being read: bounded, so a hostile
    /// `a = [[[[…` is an error instead of a stack overflow.
    var depth = 0
    static let maxDepth = 32

    init(b: [UInt8]) {
        self.b = b
        if b.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }  // UTF-8 BOM
    }

    func fail(_ m: String) -> TOMLError { TOMLError(line: line, message: m) }

    var atEnd: Bool { i >= b.count }
    var peek: UInt8 { i < b.count ? b[i] : 0 }

    mutating func skipBlank() { while i < b.count, b[i] == 32 || b[i] == 9 { i += 1 } }

    mutating func skipComment() {
        // Control characters other than tab are not allowed in comments (TOML 1.0): stop at one,
        // so the caller reports it on its line.
        guard peek == UInt8(ascii: "#") else { return }
        while i < b.count, b[i] != 10 {
            let c = b[i]
            if (c < 32 && c != 9 && !(c == 13 && i + 1 < b.count && b[i + 1] == 10)) || c == 127 { return }
            i += 1
        }
    }

    /// After a value or header: only blanks and a comment may follow on the line.
    mutating func endOfLine() throws(TOMLError) {
        skipBlank(); skipComment()
        if atEnd { return }
        if peek == 13, i + 1 < b.count, b[i + 1] == 10 { i += 1 }
        guard peek == 10 else { throw fail("unexpected text after value: expected end of line") }
        i += 1; line += 1
    }

    /// Blanks, comments and newlines (inside arrays).
    mutating func skipWhitespaceAndNewlines() {
        while !atEnd {
            skipBlank(); skipComment()
            if peek == 13 { i += 1; continue }
            if peek == 10 { i += 1; line += 1; continue }
            break
        }
    }

    mutating func document() throws(TOMLError) -> TOMLTable {
        let root = TOMLTable(line: 0)
        root.explicit = true
        var current = root
        while true {
            skipWhitespaceAndNewlines()
            if atEnd { return root }
            if peek == UInt8(ascii: "[") {
                current = try header(root: root)
            } else {
                try keyValue(into: current)
            }
            try endOfLine()
        }
    }

    mutating func header(root: TOMLTable) throws(TOMLError) -> TOMLTable {
        i += 1
        let isArray = peek == UInt8(ascii: "[")
        if isArray { i += 1 }
        skipBlank()
        let path = try dottedKey()
        skipBlank()
        guard peek == UInt8(ascii: "]") else { throw fail("expected ] to close the table header") }
        i += 1
        if isArray {
            guard peek == UInt8(ascii: "]") else { throw fail("expected ]] to close the array-of-tables header") }
            i += 1
        }
        var table = root
        for (n, key) in path.enumerated() {
            let last = n == path.count - 1
            if last && isArray {
                let fresh = TOMLTable(line: line)
                fresh.explicit = true
                if let existing = table[key] {
                    guard case .tableArray(let list) = existing.kind else {
                        throw fail("'\(path.joined(separator: "."))' is already defined as \(existing.typeName) on line \(existing.line)")
                    }
                    list.append(fresh)
                } else {
                    table.set(key, TOMLValue(kind: .tableArray(TOMLTableList(fresh)), line: line))
                }
                return fresh
            }
            if let existing = table[key] {
                switch existing.kind {
                case .table(let t):
                    if t.isInline { throw fail("inline table '\(key)' cannot be extended") }
                    if last {
                        if t.explicit { throw fail("table [\(path.joined(separator: "."))] is defined twice (first on line \(t.line))") }
                        t.explicit = true
                    }
                    table = t
                case .tableArray(let list):
                    if last { throw fail("'\(path.joined(separator: "."))' is an array of tables; use [[\(path.joined(separator: "."))]]") }
                    table = list[list.count - 1]
                default:
                    throw fail("'\(key)' is already defined as \(existing.typeName) on line \(existing.line)")
                }
            } else {
                let fresh = TOMLTable(line: line)
                fresh.explicit = last
                table.set(key, TOMLValue(kind: .table(fresh), line: line))
                table = fresh
            }
        }
        return table
    }

    mutating func keyValue(into table: TOMLTable) throws(TOMLError) {
        let keyLine = line
        let path = try dottedKey()
        skipBlank()
        guard peek == UInt8(ascii: "=") else { throw fail("expected = after key '\(path.joined(separator: "."))'") }
        i += 1
        skipBlank()
        let v = try value()
        var target = table
        for key in path.dropLast() {
            if let existing = target[key] {
                guard case .table(let t) = existing.kind, !t.isInline else {
                    throw TOMLError(line: keyLine, message: "'\(key)' is already defined as \(existing.typeName) on line \(existing.line)")
                }
                target = t
            } else {
                let fresh = TOMLTable(line: keyLine)
                target.set(key, TOMLValue(kind: .table(fresh), line: keyLine))
                target = fresh
            }
        }
        let key = path[path.count - 1]
        if let existing = target[key] {
            throw TOMLError(line: keyLine, message: "duplicate key '\(path.joined(separator: "."))' (first on line \(existing.line))")
        }
        target.set(key, TOMLValue(kind: v.kind, line: keyLine))
    }

    mutating func dottedKey() throws(TOMLError) -> [String] {
        var parts = [try simpleKey()]
        while true {
            skipBlank()
            guard peek == UInt8(ascii: ".") else { return parts }
            i += 1
            skipBlank()
            // Each segment is a table level: bound them like nesting (no 50,000-deep chain).
            guard parts.count < Self.maxDepth else { throw fail("a dotted key with more than \(Self.maxDepth) parts") }
            parts.append(try simpleKey())
        }
    }

    mutating func simpleKey() throws(TOMLError) -> String {
        if peek == UInt8(ascii: "\"") { return try basicString() }
        if peek == UInt8(ascii: "'") { return try literalString() }
        let start = i
        while i < b.count, Self.isBare(b[i]) { i += 1 }
        guard i > start else { throw fail(atEnd ? "expected a key" : "invalid character '\(Self.show(peek))' in key") }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    static func isBare(_ c: UInt8) -> Bool {
        (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) || c == 95 || c == 45
    }

    static func show(_ c: UInt8) -> String {
        c >= 32 && c < 127 ? String(UnicodeScalar(c)) : "\\x" + [c].hex
    }

    /// Three equal quotes at `i`: a multi-line string.
    var opensTripleQuote: Bool { i + 2 < b.count && b[i + 1] == b[i] && b[i + 2] == b[i] }

    mutating func value() throws(TOMLError) -> TOMLValue {
        let at = line
        let nests = peek == UInt8(ascii: "[") || peek == UInt8(ascii: "{")
        if nests {
            guard depth < Self.maxDepth else { throw fail("arrays and inline tables nested deeper than \(Self.maxDepth) levels") }
            depth += 1
        }
        defer { if nests { depth -= 1 } }
        switch peek {
        case UInt8(ascii: "\""):
            if opensTripleQuote { throw fail("multi-line strings are not supported here") }
            return TOMLValue(kind: .string(try basicString()), line: at)
        case UInt8(ascii: "'"):
            if opensTripleQuote { throw fail("multi-line strings are not supported here") }
            return TOMLValue(kind: .string(try literalString()), line: at)
        case UInt8(ascii: "["):
            i += 1
            var items = [TOMLValue]()
            while true {
                skipWhitespaceAndNewlines()
                if peek == UInt8(ascii: "]") { i += 1; return TOMLValue(kind: .array(items), line: at) }
                guard !atEnd else { throw TOMLError(line: at, message: "unterminated array") }
                items.append(try value())
                skipWhitespaceAndNewlines()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                if peek == UInt8(ascii: "]") { i += 1; return TOMLValue(kind: .array(items), line: at) }
                throw fail("expected , or ] in array")
            }
        case UInt8(ascii: "{"):
            i += 1
            let t = TOMLTable(line: at)
            t.isInline = true
            skipBlank()
            if peek == UInt8(ascii: "}") { i += 1; return TOMLValue(kind: .table(t), line: at) }
            while true {
                skipBlank()
                try keyValue(into: t)
                skipBlank()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                if peek == UInt8(ascii: "}") { i += 1; return TOMLValue(kind: .table(t), line: at) }
                throw fail("expected , or } in inline table")
            }
        default:
            let start = i
            while i < b.count, !(b[i] == 32 || b[i] == 9 || b[i] == 10 || b[i] == 13 || b[i] == 44
                                 || b[i] == 93 || b[i] == 125 || b[i] == 35) { i += 1 }
            let word = String(decoding: b[start..<i], as: UTF8.self)
            if word.isEmpty { throw fail(atEnd ? "expected a value" : "expected a value, found '\(Self.show(peek))'") }
            if word == "true" { return TOMLValue(kind: .boolean(true), line: at) }
            if word == "false" { return TOMLValue(kind: .boolean(false), line: at) }
            if let v = Self.integer(word) { return TOMLValue(kind: .integer(v), line: at) }
            if let d = Self.float(word) { return TOMLValue(kind: .float(d), line: at) }
            if word.contains("-") || word.contains(":") {
                throw fail("dates and times are not supported here; write \"\(word)\" as a string")
            }
            throw fail("invalid value '\(word)' (strings need quotes)")
        }
    }

    static func integer(_ w: String) -> Int64? {
        var s = Substring(w)
        var negative = false
        if s.first == "+" || s.first == "-" { negative = s.first == "-"; s = s.dropFirst() }
        var radix = 10
        if s.hasPrefix("0x") { radix = 16; s = s.dropFirst(2) }
        else if s.hasPrefix("0o") { radix = 8; s = s.dropFirst(2) }
        else if s.hasPrefix("0b") { radix = 2; s = s.dropFirst(2) }
        guard !s.isEmpty, s.first != "_", s.last != "_", !s.contains("__") else { return nil }
        if radix == 10, s.count > 1, s.first == "0" { return nil }
        guard let v = Int64(s.replacingOccurrences("_"), radix: radix) else { return nil }
        return negative ? -v : v
    }

    static func float(_ w: String) -> Double? {
        switch w {
        case "inf", "+inf": return .infinity
        case "-inf": return -.infinity
        case "nan", "+nan", "-nan": return .nan
        default: break
        }
        guard w.contains(".") || w.contains("e") || w.contains("E"), !w.hasSuffix("."), !w.hasPrefix(".") else { return nil }
        return Double(Substring(w).replacingOccurrences("_"))
    }

    mutating func literalString() throws(TOMLError) -> String {
        i += 1
        let start = i
        while i < b.count, b[i] != UInt8(ascii: "'") {
            if b[i] == 10 { throw fail("unterminated string") }
            i += 1
        }
        guard !atEnd else { throw fail("unterminated string") }
        let s = String(decoding: b[start..<i], as: UTF8.self)
        i += 1
        return s
    }

    mutating func basicString() throws(TOMLError) -> String {
        i += 1
        var out = [UInt8]()
        while true {
            guard i < b.count, b[i] != 10 else { throw fail("unterminated string") }
            let c = b[i]; i += 1
            if c == UInt8(ascii: "\"") { break }
            if c == UInt8(ascii: "\\") {
                guard i < b.count else { throw fail("unterminated string") }
                let e = b[i]; i += 1
                switch e {
                case UInt8(ascii: "b"): out.append(8)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "f"): out.append(12)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "\""): out.append(34)
                case UInt8(ascii: "\\"): out.append(92)
                case UInt8(ascii: "u"), UInt8(ascii: "U"):
                    let n = e == UInt8(ascii: "u") ? 4 : 8
                    guard i + n <= b.count, let v = UInt32(String(decoding: b[i..<(i + n)], as: UTF8.self), radix: 16),
                          let u = Unicode.Scalar(v) else { throw fail("invalid unicode escape") }
                    i += n
                    out += Array(String(Character(u)).utf8)
                default: throw fail("invalid escape '\\\(Self.show(e))'")
                }
            } else if c < 32 && c != 9 || c == 127 {
                throw fail("control character in string")
            } else {
                out.append(c)
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
        return s
    }
}

extension Substring {
    func replacingOccurrences(_ ch: Character) -> String { String(filter { $0 != ch }) }
}
