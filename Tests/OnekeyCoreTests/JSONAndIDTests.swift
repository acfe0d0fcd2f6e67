import Testing
@testable import OnekeyCore

@Suite struct JSONTests {
    @Test func roundTrip() throws {
        let v = JSON.object([("a", .string("陈\"\\\n\u{01}")), ("b", .array([.int(-3), .bool(true), .null])), ("c", .double(1.5))])
        #expect(try JSON.parse(v.bytes) == v)
        #expect(try JSON.parse("{\"x\":\"\\ud83d\\ude00\"}")["x"]?.stringValue == "😀")
        // Found by the fuzzer: a number beyond Double's range cannot round-trip; it is refused.
        #expect(throws: JSON.ParseError.self) { try JSON.parse("1e999") }
    }

    @Test func fuzzNeverTraps() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("{}[]\",:\\ntrufals0123456789.-eE ".utf8)
        for _ in 0..<5000 {
            let bytes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            if let v = try? JSON.parse(bytes) { #expect((try? JSON.parse(v.bytes)) == v) }
        }
    }
}

@Suite struct TimestampTests {
    @Test func rfc3339() {
        let t = Timestamp(milliseconds: 1_795_000_000_123)
        #expect(t.rfc3339 == "2026-11-18T11:06:40.123Z")
        #expect(Timestamp(rfc3339: t.rfc3339) == t)
        #expect(Timestamp(rfc3339: "2026-11-18T19:06:40.123+08:00") == t)
        #expect(Timestamp(rfc3339: "2026-11-18T11:06:40Z")?.milliseconds == 1_795_000_000_000)
        #expect(Timestamp(rfc3339: "2026-11-18T11:06:40.123456Z")?.milliseconds == 1_795_000_000_123)
        #expect(Timestamp(rfc3339: "yesterday") == nil)
    }
}

@Suite struct IdentifierTests {
    @Test func idsSortByTimeAndNeverRepeat() {
        var src = IdentifierSource()
        var ids = [String]()
        for i in 0..<1000 { ids.append(src.next(at: Timestamp(milliseconds: 1_700_000_000_000 + Int64(i / 10)))) }
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.count == 26 })
    }

    /// The time prefix the store bounds its id scans with: an id issued at `t` starts with it,
    /// and it sorts after every id issued a millisecond earlier.
    @Test func timePrefixBoundsTheIDsOfAnInstant() {
        var source = IdentifierSource()
        let t = Timestamp(milliseconds: 1_795_000_000_123)
        let earlier = source.next(at: t.adding(milliseconds: -1))
        let id = source.next(at: t)
        #expect(id.hasPrefix(IdentifierSource.prefix(at: t)))
        #expect(IdentifierSource.prefix(at: t).count == 10)
        #expect(earlier < IdentifierSource.prefix(at: t))
    }

    @Test func aClockSteppedBackStillYieldsLaterIDs() {
        var first = IdentifierSource()
        let old = first.next(at: Timestamp(milliseconds: 1_800_000_000_000))
        var restarted = IdentifierSource()
        restarted.advance(past: old)
        let next = restarted.next(at: Timestamp(milliseconds: 1_700_000_000_000))
        #expect(next > old)
    }
}

@Suite struct DedupTests {
    let frame = DecodedFrame(driver: .ev1527, address: "A1B2C", code: "8", raw: [])

    @Test func leadingEdgeActsAndRepeatsWithinTheWindowFold() {
        var d = PressDeduplicator(windowMs: 3000)
        let ms: UInt64 = 1_000_000
        var other = frame; other.code = "4"
        // A held button keeps the press going: the window slides with each repeat (4900 ms).
        let seen = [(frame, 0), (frame, 50), (frame, 2000), (frame, 4900), (frame, 8000), (other, 8001)].map { d.isRepeat($0.0, at: UInt64($0.1) * ms) }
        #expect(seen == [false, true, true, true, false, false])
    }

    @Test func zeroWindowNeverFolds() {
        var d = PressDeduplicator(windowMs: 0)
        let seen = [d.isRepeat(frame, at: 1), d.isRepeat(frame, at: 1)]
        #expect(seen == [false, false])
    }
}

/// A press's messages are written straight into bytes (`JSONObjectWriter`); control answers embed
/// the same payloads as `JSON` values. Both come from one field list per payload: the bytes must be
/// exactly what the value serializes to, escapes, nulls and optional fields included.
@Suite struct PayloadWriterTests {
    static let t0 = Timestamp(milliseconds: 1_795_000_000_123)
    static let awkward = "陈婆婆 \"3栋\"\\2单元\n401\u{01}\t"

    static var alerts: [Alert] {
        [Alert(id: "01A", device: "btn-1", kind: .panic, grid: "grid-7", resident: awkward, location: "双合店社区", raisedAt: t0),
         Alert(id: "01B", device: "btn-2", kind: .lowBattery, state: .acked, grid: "g", resident: "r", location: "l", raisedAt: t0,
               lastPressAt: Timestamp(milliseconds: 1_795_000_009_000), pressCount: 3, step: 2, paged: ["m-1", "m-\"2\""],
               ackedBy: "m-1", ackedAt: t0, resolvedAt: t0, resolvedBy: "m-2", note: awkward, test: true,
               nextStepAt: t0, unattended: true)]
    }

    @Test func bytesAreTheValueSerialized() throws {
        for a in Self.alerts {
            for key in ["k1", nil] as [String?] {
                #expect(Payloads.alertBytes(a, gateway: "gw", key: key) == Payloads.alert(a, gateway: "gw", key: key).bytes)
            }
            let page = Payloads.pageBytes(a, member: "m-9", reason: .escalated, gridName: Self.awkward, at: Self.t0, key: "k2")
            #expect(page == Payloads.page(a, member: "m-9", reason: .escalated, gridName: Self.awkward, at: Self.t0, key: "k2").bytes)
            #expect(try JSON.parse(page)["resident"]?.stringValue == a.resident)
        }
        let events = [
            GatewayEvent(id: "e1", device: nil, driver: .ev1527, address: "A1B2C", kind: .unknownDevice, code: "8",
                         receivedAt: Self.t0, raw: [0xA1, 0x2C], count: 7),
            GatewayEvent(id: "e2", device: "btn-1", driver: .surgard, address: "1234", kind: .panic, code: "120",
                         receivedAt: Self.t0, raw: [], alertID: "01A", test: true),
        ]
        for e in events {
            #expect(Payloads.eventBytes(e, gateway: "gw", key: "k3") == Payloads.event(e, gateway: "gw", key: "k3").bytes)
        }
        let d = DeviceConfig(id: "btn-1", driver: .ev1527, address: "A1B2C", grid: "grid-7", resident: Self.awkward,
                             location: "l", supervisionSeconds: 0, codes: [:])
        for state in [DeviceState(id: "btn-1"), DeviceState(id: "btn-1", online: false, lastSeen: Self.t0, batteryLow: true)] {
            #expect(Payloads.deviceBytes(d, state: state, gateway: "gw", key: "k4") == Payloads.device(d, state: state, gateway: "gw", key: "k4").bytes)
        }
    }

    /// The wire form itself, pinned: a change to both sides at once does not slip through.
    @Test func pageOnTheWire() {
        let a = Alert(id: "01A", device: "btn-1", kind: .panic, grid: "grid-7", resident: "陈婆婆", location: "3栋\"401\"", raisedAt: Self.t0)
        let text = String(decoding: Payloads.pageBytes(a, member: "m-1", reason: .raised, gridName: "第七网格", at: Self.t0, key: "k"), as: UTF8.self)
        #expect(text == #"{"alert":"01A","member":"m-1","reason":"raised","kind":"panic","state":"open","device":"btn-1","resident":"陈婆婆","location":"3栋\"401\"","grid":"grid-7","grid_name":"第七网格","step":0,"press_count":1,"raised_at":"2026-11-18T11:06:40.123Z","paged_at":"2026-11-18T11:06:40.123Z","test":false,"msg_id":"k"}"#)
    }
}
