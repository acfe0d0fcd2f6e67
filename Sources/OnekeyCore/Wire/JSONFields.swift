/// Where a payload's fields go: straight into bytes (a press's messages, `JSONObjectWriter`) or
/// into a `JSON` value (control answers that embed a payload, `JSONObjectTree`). A payload lists
/// its fields once (`Payloads`), so both forms always carry the same fields in the same order.
public protocol JSONFieldSink {
    mutating func string(_ key: StaticString, _ value: String)
    mutating func string(_ key: StaticString, _ value: String?)
    mutating func int(_ key: StaticString, _ value: Int)
    mutating func bool(_ key: StaticString, _ value: Bool)
    mutating func strings(_ key: StaticString, _ values: [String])
}

extension JSONFieldSink {
    mutating func time(_ key: StaticString, _ t: Timestamp) { string(key, t.rfc3339) }
    mutating func time(_ key: StaticString, _ t: Timestamp?) { string(key, t?.rfc3339) }
}

/// One JSON object written as it is described: no tree of values to allocate and walk (building
/// and serializing a tree was the largest part of deciding a press, which runs before its commit).
/// Keys are literals without characters to escape.
public struct JSONObjectWriter: JSONFieldSink {
    private var out: [UInt8]

    public init(capacity: Int = 512) {
        out = []
        out.reserveCapacity(capacity)
        out.append(UInt8(ascii: "{"))
    }

    /// The object's bytes, closed.
    public consuming func finish() -> [UInt8] {
        out.append(UInt8(ascii: "}"))
        return out
    }

    private mutating func key(_ k: StaticString) {
        if out.count > 1 { out.append(UInt8(ascii: ",")) }
        out.append(UInt8(ascii: "\""))
        k.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(UInt8(ascii: "\""))
        out.append(UInt8(ascii: ":"))
    }

    public mutating func string(_ k: StaticString, _ value: String) {
        key(k)
        JSON.writeString(value, into: &out)
    }

    public mutating func string(_ k: StaticString, _ value: String?) {
        guard let value else { key(k); out.append(contentsOf: "null".utf8); return }
        string(k, value)
    }

    public mutating func int(_ k: StaticString, _ value: Int) {
        key(k)
        out.append(contentsOf: String(value).utf8)
    }

    public mutating func bool(_ k: StaticString, _ value: Bool) {
        key(k)
        out.append(contentsOf: (value ? "true" : "false").utf8)
    }

    public mutating func strings(_ k: StaticString, _ values: [String]) {
        key(k)
        out.append(UInt8(ascii: "["))
        for (i, v) in values.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSON.writeString(v, into: &out)
        }
        out.append(UInt8(ascii: "]"))
    }
}

/// The same fields as a `JSON` object.
public struct JSONObjectTree: JSONFieldSink {
    public private(set) var fields: [(String, JSON)] = []

    public init() {}

    public var json: JSON { .object(fields) }

    private static func name(_ k: StaticString) -> String { k.withUTF8Buffer { String(decoding: $0, as: UTF8.self) } }

    public mutating func string(_ k: StaticString, _ value: String) { fields.append((Self.name(k), .string(value))) }
    public mutating func string(_ k: StaticString, _ value: String?) { fields.append((Self.name(k), .optional(value))) }
    public mutating func int(_ k: StaticString, _ value: Int) { fields.append((Self.name(k), .int(Int64(value)))) }
    public mutating func bool(_ k: StaticString, _ value: Bool) { fields.append((Self.name(k), .bool(value))) }
    public mutating func strings(_ k: StaticString, _ values: [String]) { fields.append((Self.name(k), .array(values.map { .string($0) }))) }
}
