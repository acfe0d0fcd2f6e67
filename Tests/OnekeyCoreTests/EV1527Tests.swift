import Testing
@testable import OnekeyCore

/// The sample frames of Sources/OnekeyCore/Drivers/EV1527.swift are the test vectors.
@Suite struct EV1527Tests {
    static let samples: [([UInt8], String, String)] = [
        ([0xFD, 0xA1, 0xB2, 0xC8, 0x1E, 0xDF], "A1B2C", "8"),
        ([0xFD, 0xA1, 0xB2, 0xC4, 0x1E, 0xDF], "A1B2C", "4"),
        ([0xFD, 0x0F, 0x42, 0x41, 0x22, 0xDF], "0F424", "1"),
    ]

    @Test func sampleFramesDecode() {
        for (raw, address, code) in Self.samples {
            var d = EV1527Decoder()
            let r = d.feed(raw)
            #expect(r.frames == [DecodedFrame(driver: .ev1527, address: address, code: code, raw: raw)])
            #expect(r.skippedBytes == 0)
            #expect(d.pendingBytes == 0)
        }
    }

    @Test func encodeIsTheInverseOfDecode() {
        for (raw, address, code) in Self.samples {
            #expect(EV1527Decoder.encode(address: address, key: UInt8(code, radix: 16)!, width: raw[4]) == raw)
        }
        #expect(EV1527Decoder.encode(address: "XYZ12", key: 8) == nil)
        #expect(EV1527Decoder.encode(address: "A1B2C", key: 16) == nil)
    }

    @Test func garbageBetweenFramesIsSkippedAndCounted() {
        var d = EV1527Decoder()
        let bytes: [UInt8] = [0x00, 0x13] + Self.samples[0].0 + [0xFD, 0x11, 0xDF] + Self.samples[1].0 + [0xAA]
        let r = d.feed(bytes)
        #expect(r.frames.map(\.code) == ["8", "4"])
        #expect(r.skippedBytes == 2 + 3 + 1)
    }

    @Test func framesSplitAcrossReadsAreReassembled() {
        var d = EV1527Decoder()
        let raw = Self.samples[2].0
        var frames = [DecodedFrame]()
        for b in raw { frames += d.feed([b]).frames }
        #expect(frames.count == 1)
        #expect(frames.first?.address == "0F424")
    }

    @Test func truncatedFrameFollowedByAFullOneCostsOnlyTheTruncatedBytes() {
        var d = EV1527Decoder()
        let r = d.feed([0xFD, 0xA1, 0xB2] + Self.samples[0].0)
        #expect(r.frames.count == 1)
        #expect(r.skippedBytes == 3)
    }

    /// Fuzz: random bytes never trap, everything is accounted for, and every frame the decoder
    /// reports is well formed.
    @Test func fuzzRandomBytes() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var d = EV1527Decoder()
            let n = Int.random(in: 0...200, using: &rng)
            let bytes = (0..<n).map { _ in Bool.random(using: &rng) ? UInt8.random(in: 0...255, using: &rng) : [0xFD, 0xDF][Int.random(in: 0...1, using: &rng)] }
            var frames = 0, skipped = 0
            var offset = 0
            while offset < bytes.count {
                let k = min(bytes.count - offset, Int.random(in: 1...9, using: &rng))
                let r = d.feed(Array(bytes[offset..<(offset + k)]))
                for f in r.frames {
                    #expect(f.raw.count == 6 && f.raw.first == 0xFD && f.raw.last == 0xDF)
                    #expect(f.address.count == 5 && f.code.count == 1)
                }
                frames += r.frames.count
                skipped += r.skippedBytes
                offset += k
            }
            #expect(frames * 6 + skipped + d.pendingBytes == bytes.count)
            #expect(d.pendingBytes < 6)
        }
    }

    /// Fuzz: valid frames separated by garbage that holds no 0xFD are all found, in order.
    @Test func fuzzFramesInNoiseAreAllFound() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var expected = [String]()
            var stream = [UInt8]()
            for _ in 0..<Int.random(in: 1...20, using: &rng) {
                stream += (0..<Int.random(in: 0...10, using: &rng)).map { _ in UInt8.random(in: 0...0xFC, using: &rng) }
                let address = String(UInt32.random(in: 0...0xFFFFF, using: &rng), radix: 16, uppercase: true)
                let padded = String(repeating: "0", count: 5 - address.count) + address
                let key = UInt8.random(in: 0...15, using: &rng)
                stream += EV1527Decoder.encode(address: padded, key: key)!
                expected.append("\(padded)/\(String(key, radix: 16, uppercase: true))")
            }
            var d = EV1527Decoder()
            let r = d.feed(stream)
            #expect(r.frames.map { "\($0.address)/\($0.code)" } == expected)
        }
    }
}
