import OnekeyCore

/// JSON from outside: MQTT payloads and control-socket lines.
enum WireFuzz {
    /// Any bytes: parse, and when they parse, the value must print and parse back to itself.
    static func json(_ data: [UInt8]) {
        guard let value = try? JSON.parse(data) else { return }
        let printed = value.bytes
        guard let again = try? JSON.parse(printed) else {
            return invariant(false, "printed JSON does not parse: \(String(decoding: printed, as: UTF8.self).prefix(200))")
        }
        invariant(again == value, "JSON round trip changed the value")
    }

    /// A control-socket line: the shape checks the daemon applies before dispatch
    /// (an object with a `cmd` string; typed fields read without defaults).
    static func controlRequest(_ data: [UInt8]) {
        guard let request = try? JSON.parse(data) else { return }
        guard case .object = request, let cmd = request["cmd"]?.stringValue else { return }
        _ = cmd.utf8.count
        for field in ["id", "member", "note", "device", "grid", "at", "days", "all"] {
            guard let v = request[field] else { continue }
            _ = (v.stringValue, v.intValue, v.boolValue, v.arrayValue?.count, v.isNull)
        }
        _ = request.text
    }
}
