import OnekeyCore

/// Human output: aligned tables and relative times.
enum Render {
    /// Terminal columns: CJK and full-width characters take two.
    static func columns(_ s: String) -> Int {
        s.unicodeScalars.reduce(0) { n, u in
            let v = u.value
            let wide = (0x1100...0x115F).contains(v) || (0x2E80...0xA4CF).contains(v) || (0xAC00...0xD7A3).contains(v)
                || (0xF900...0xFAFF).contains(v) || (0xFE30...0xFE4F).contains(v) || (0xFF00...0xFF60).contains(v)
                || (0xFFE0...0xFFE6).contains(v) || (0x20000...0x3FFFD).contains(v)
            return n + (wide ? 2 : 1)
        }
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        guard !rows.isEmpty else { return "" }
        var widths = header.map(columns)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], columns(c)) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c + String(repeating: " ", count: widths[i] - columns(c)) }
                .joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    /// "3m ago", "in 2m", "just now".
    static func relative(_ text: String?, now: Timestamp) -> String {
        guard let text, let t = Timestamp(rfc3339: text) else { return "-" }
        let d = (now.milliseconds - t.milliseconds) / 1000
        let a = abs(d)
        let span: String
        switch a {
        case ..<5: return "just now"
        case ..<60: span = "\(a)s"
        case ..<3600: span = "\(a / 60)m"
        case ..<86400: span = "\(a / 3600)h\(a % 3600 / 60 > 0 ? "\(a % 3600 / 60)m" : "")"
        default: span = "\(a / 86400)d"
        }
        return d >= 0 ? "\(span) ago" : "in \(span)"
    }

    static func s(_ j: JSON?) -> String {
        guard let j else { return "-" }
        switch j {
        case .null: return "-"
        case .string(let v): return v.isEmpty ? "-" : v
        case .int(let v): return String(v)
        case .bool(let b): return b ? "yes" : "no"
        case .array(let a): return a.isEmpty ? "-" : a.map { s($0) }.joined(separator: ",")
        default: return j.text
        }
    }

    static func status(_ r: JSON, _ now: Timestamp) -> String {
        let mqtt = r["mqtt"]
        let broker = "\(s(mqtt?["host"])):\(s(mqtt?["port"]))\(mqtt?["tls"]?.boolValue == true ? " (TLS)" : "")"
        var out = """
            gateway   \(s(r["gateway"])) (onekeyd \(s(r["version"])), up since \(relative(r["since"]?.stringValue, now: now)))
            broker    \(broker) \(mqtt?["connected"]?.boolValue == true ? "connected" : "NOT CONNECTED: \(s(mqtt?["last_error"]))")
            alerts    \(s(r["open_alerts"])) open\(r["next_escalation"]?.stringValue.map { ", next escalation \(relative($0, now: now))" } ?? "")
            outbox    \(s(r["outbox"]?["count"])) waiting, \(s(r["outbox"]?["in_flight"])) in flight
            """
        if r["modem"]?["configured"]?.boolValue == true { out += "\nmodem     " + modem(r["modem"]) }
        let c = r["counters"]
        out += "\ncounters  frames \(s(c?["frames"])), repeats \(s(c?["repeat_frames"])), garbage bytes \(s(c?["garbage_bytes"])), pages \(s(c?["pages"])), published \(s(c?["published"])), rejected actions \(s(c?["rejected_actions"]))"
        let ports = r["ports"]?.arrayValue ?? []
        if !ports.isEmpty {
            out += "\n\n" + table(["PORT", "DRIVER", "STATE", "SINCE", "ERROR"], ports.map {
                [s($0["path"]), s($0["driver"]), s($0["state"]), relative($0["since"]?.stringValue, now: now), s($0["error"])]
            })
        }
        return out
    }

    static func devices(_ r: JSON, _ now: Timestamp) -> String {
        let list = r["devices"]?.arrayValue ?? []
        if list.isEmpty { return "no devices enrolled" }
        return table(["DEVICE", "DRIVER", "ADDRESS", "GRID", "LAST SEEN", "BATTERY", "OPEN ALERTS", "RESIDENT / LOCATION"], list.map {
            [s($0["id"]), s($0["driver"]), s($0["address"]), s($0["grid"]), relative($0["last_seen"]?.stringValue, now: now),
             s($0["battery"]), s($0["open_alerts"]), "\(s($0["resident"])) \(s($0["location"]))"]
        })
    }

    static func alertRow(_ a: JSON, _ now: Timestamp) -> [String] {
        [s(a["id"]), s(a["state"]) + (a["test"]?.boolValue == true ? " (test)" : ""), s(a["kind"]), s(a["device"]),
         relative(a["raised_at"]?.stringValue, now: now), s(a["press_count"]), s(a["step"]), s(a["paged"]), s(a["acked_by"])]
    }

    static let alertHeader = ["ALERT", "STATE", "KIND", "DEVICE", "RAISED", "PRESSES", "STEP", "PAGED", "ACKED BY"]

    static func alerts(_ r: JSON, _ now: Timestamp) -> String {
        let list = r["alerts"]?.arrayValue ?? []
        if list.isEmpty { return "no alerts" }
        return table(alertHeader, list.map { alertRow($0, now) })
    }

    static func alert(_ r: JSON, _ now: Timestamp) -> String {
        guard let a = r["alert"] else { return "" }
        var out = """
            alert      \(s(a["id"]))\(a["test"]?.boolValue == true ? " (TEST)" : "")
            state      \(s(a["state"]))
            kind       \(s(a["kind"])) from \(s(a["device"])): \(s(a["resident"])), \(s(a["location"])) (grid \(s(a["grid"])))
            raised     \(s(a["raised_at"])) (\(relative(a["raised_at"]?.stringValue, now: now))), \(s(a["press_count"])) press(es), last \(relative(a["last_press_at"]?.stringValue, now: now))
            step       \(s(a["step"]))\(a["next_step_at"]?.stringValue.map { ", next \(relative($0, now: now))" } ?? "")
            paged      \(s(a["paged"]))
            """
        if a["acked_by"]?.isNull == false { out += "\nacked      by \(s(a["acked_by"])) \(relative(a["acked_at"]?.stringValue, now: now))" }
        if a["resolved_at"]?.isNull == false { out += "\nclosed     \(relative(a["resolved_at"]?.stringValue, now: now)) by \(s(a["resolved_by"]))" }
        if a["note"]?.isNull == false { out += "\nnote       \(s(a["note"]))" }
        let events = r["events"]?.arrayValue ?? []
        if !events.isEmpty {
            out += "\n\n" + table(["EVENT", "KIND", "CODE", "RECEIVED", "RAW"], events.map {
                [s($0["id"]), s($0["kind"]), s($0["code"]), s($0["received_at"]), s($0["raw"])]
            })
        }
        return out
    }

    static func action(_ verb: String) -> @Sendable (JSON, Timestamp) -> String {
        { r, now in
            guard let a = r["alert"], !a.isNull else { return verb }
            return "\(s(a["id"])) \(verb): now \(s(a["state"])), step \(s(a["step"])), paged \(s(a["paged"]))"
        }
    }

    static func oncall(_ r: JSON, _ now: Timestamp) -> String {
        let grids = r["grids"]?.arrayValue ?? []
        return "on call at \(s(r["at"])) (\(s(r["timezone"])))\n" + table(["GRID", "NAME", "PRIMARY", "BACKUP"], grids.map {
            [s($0["grid"]), s($0["name"]), $0["primary"]?.arrayValue?.isEmpty == false ? s($0["primary"]) : "NOBODY", s($0["backup"])]
        })
    }

    static func gaps(_ r: JSON, _ now: Timestamp) -> String {
        let gaps = r["gaps"]?.arrayValue ?? []
        if gaps.isEmpty { return "no roster gaps in the next \(s(r["days"])) day(s): every grid has a primary on shift" }
        return "\(gaps.count) window(s) with no primary on shift in the next \(s(r["days"])) day(s):\n"
            + table(["GRID", "FROM", "TO", "MINUTES"], gaps.map { [s($0["grid"]), s($0["from"]), s($0["to"]), s($0["minutes"])] })
    }

    /// One line: `onekeyctl modem` and the status's modem row.
    static func modem(_ m: JSON?) -> String {
        guard let m, m["configured"]?.boolValue == true else { return "no modem configured" }
        let dbm = m["signal_dbm"]?.intValue.map { "\($0) dBm" } ?? "unknown"
        return "\(s(m["path"])) \(s(m["state"])), registration \(s(m["registration"])), signal \(dbm), SIM \(s(m["sim"])), SMS waiting \(s(m["sms_waiting"])), sent \(s(m["sms_sent"])), failed \(s(m["sms_failed"])), calls \(s(m["calls"]))\(m["last_error"]?.stringValue.map { ", last error: \($0)" } ?? "")"
    }

    static func outbox(_ r: JSON, _ now: Timestamp) -> String {
        var out = "\(s(r["count"])) message(s) waiting\(r["oldest"]?.stringValue.map { ", oldest \(relative($0, now: now))" } ?? ""), \(s(r["in_flight"])) in flight, broker \(r["connected"]?.boolValue == true ? "connected" : "not connected")"
        let topics = r["topics"]?.arrayValue ?? []
        if !topics.isEmpty {
            out += "\n" + table(["TOPIC", "WAITING", "SINCE"], topics.map { [s($0["topic"]), s($0["count"]), relative($0["since"]?.stringValue, now: now)] })
        }
        return out
    }

    static func unknown(_ r: JSON, _ now: Timestamp) -> String {
        let list = r["unknown"]?.arrayValue ?? []
        if list.isEmpty { return "no unknown addresses heard" }
        return table(["DRIVER", "ADDRESS", "CODES", "FRAMES", "FIRST HEARD", "LAST HEARD"], list.map {
            [s($0["driver"]), s($0["address"]), s($0["codes"]), s($0["frames"]),
             relative($0["first_heard"]?.stringValue, now: now), relative($0["last_heard"]?.stringValue, now: now)]
        }) + "\n\nenrol one with a [[device]] block: driver = \"DRIVER\", address = \"ADDRESS\", then onekeyctl reload"
    }

    /// The fields the daemon reports, in this order, under these labels; absent ones are left out.
    static let modemFields: [(String, String)] = [
        ("configured", "configured"), ("path", "port"), ("state", "state"), ("sim", "SIM"),
        ("registration", "network"), ("signal", "signal"), ("sms_waiting", "SMS waiting"),
        ("sms_sent", "SMS sent"), ("sms_failed", "SMS failed"), ("calls", "calls"), ("last_error", "last error"),
    ]

    static func modem(_ r: JSON, _ now: Timestamp) -> String {
        guard let m = r["modem"], !m.isNull else { return "no modem configured" }
        if m["configured"]?.boolValue == false { return "no modem configured" }
        let known = Set(modemFields.map(\.0))
        var rows = modemFields.compactMap { key, label in m[key].map { [label, s($0)] } }
        // Anything newer daemons report that this client has no label for is shown too.
        rows += (m.members).filter { !known.contains($0.0) }.map { [$0.0, s($0.1)] }
        let width = rows.map { columns($0[0]) }.max() ?? 0
        return rows.map { $0[0] + String(repeating: " ", count: width - columns($0[0]) + 2) + $0[1] }.joined(separator: "\n")
    }
}

extension JSON {
    /// An object's key-value pairs in order; empty for anything else.
    var members: [(String, JSON)] { if case .object(let pairs) = self { return pairs }; return [] }
}
