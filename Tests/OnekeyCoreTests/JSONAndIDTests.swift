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
