import Testing
@testable import OnekeyCore

/// The sample messages of Sources/OnekeyCore/Drivers/SurGard.swift are the test vectors.
@Suite struct SurGardTests {
    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func sampleMessages() {
        var d = SurGardDecoder()
        let r = d.feed(Self.bytes("5011 181234E12101001\u{14}5011 18ABCDE10001003\u{14}5011 181234R12101001\u{14}1011           @    \u{14}"))
        #expect(r.frames.map { "\($0.address)/\($0.code)/\($0.kind!.rawValue)" } == ["1234/121/panic", "ABCD/100/medical", "1234/121/restore"])
        #expect(r.items == [.frame(r.frames[0]), .reply([0x06]), .frame(r.frames[1]), .reply([0x06]), .frame(r.frames[2]), .reply([0x06]), .reply([0x06])])
        #expect(r.frames[0].raw == Self.bytes("5011 181234E12101001\u{14}"))
        #expect(r.skippedBytes == 0 && d.pendingBytes == 0)
    }

    @Test func codesMapToKinds() {
        let table: [(String, EventKind)] = [("100", .medical), ("101", .panic), ("120", .panic), ("123", .panic), ("406", .cancel),
                                            ("302", .lowBattery), ("384", .lowBattery), ("137", .tamper), ("383", .tamper),
                                            ("381", .supervisionLoss), ("602", .test), ("641", .inactivity), ("999", .unknown)]
        for (code, kind) in table { #expect(SurGardDecoder.kind(code) == kind) }
    }

    @Test func unparseableMessagesAreNAKedAndCounted() {
        var d = SurGardDecoder()
        let r = d.feed(Self.bytes("garbage\u{14}5011 181234X12101001\u{14}\r\n5011 181234E12101001\u{14}"))
        #expect(r.items.count == 4)
        #expect(r.replies == [[0x15], [0x15], [0x06]])
        #expect(r.frames.count == 1)
        #expect(r.skippedBytes == 8 + 21)
    }

    @Test func messagesSplitAcrossReadsAndEndlessNoise() {
        var d = SurGardDecoder()
        var frames = [DecodedFrame]()
        for b in Self.bytes("\r\n5011 181234E12101001\u{14}") { frames += d.feed([b]).frames }
        #expect(frames.count == 1)
        let noise = d.feed([UInt8](repeating: 0x41, count: 300))
        #expect(noise.skippedBytes >= 256 && d.pendingBytes <= 128)
    }

    @Test func fuzzNeverTrapsAndAnswersEveryCompleteLine() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Self.bytes("5011 18ABCDE1234RP@\r\n") + [0x14, 0x14, 0x00, 0xFF]
        for _ in 0..<3000 {
            var d = SurGardDecoder()
            let input = (0..<Int.random(in: 0...80, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let r = d.feed(input)
            let lines = input.filter { $0 == 0x14 }.count
            // Every DC4 ends a message and gets exactly one answer, unless noise overflow ate it.
            #expect(r.replies.count <= lines)
            for f in r.frames { #expect(f.address.count == 4 && f.code.count == 3 && f.kind != nil) }
        }
    }
}
