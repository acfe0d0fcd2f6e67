import OnekeyCore

/// Serial and input bytes: the input is split into chunks (the first byte seeds the chunk sizes,
/// as a tty delivers whatever it has), fed to one decoder, and the decoder's accounting checked:
/// every byte is a frame's byte, a skipped byte, or still pending, and the buffer stays bounded.
enum DecoderFuzz {
    static func ev1527(_ data: [UInt8]) { feed(EV1527Decoder(), data) }
    static func surgard(_ data: [UInt8]) { feed(SurGardDecoder(), data) }
    static func evdev(_ data: [UInt8]) { feed(EvdevDecoder(address: "/dev/input/event0"), data) }

    static func feed<D: FrameDecoder>(_ fresh: D, _ data: [UInt8]) {
        guard let seed = data.first else { return }
        let body = Array(data.dropFirst())
        // The whole input at once, then the same input in small chunks: both must agree.
        var whole = fresh
        let once = whole.feed(body)
        check(once, decoder: whole, fed: body.count)
        var chunked = fresh
        var frames: [DecodedFrame] = []
        var skipped = 0
        var at = 0
        var step = Int(seed % 7) + 1
        while at < body.count {
            let end = min(body.count, at + step)
            let r = chunked.feed(Array(body[at..<end]))
            frames += r.frames
            skipped += r.skippedBytes
            invariant(chunked.pendingBytes <= 4096, "decoder buffer grew to \(chunked.pendingBytes)")
            at = end
            step = (step * 5 + 3) % 11 + 1
        }
        invariant(frames.count == once.frames.count,
                  "chunking changed the frames: \(frames.count) vs \(once.frames.count)")
        for f in frames { checkFrame(f) }
    }

    static func check<D: FrameDecoder>(_ r: DecodeResult, decoder: D, fed: Int) {
        let frameBytes = r.frames.reduce(0) { $0 + $1.raw.count }
        invariant(r.skippedBytes >= 0, "negative skipped count")
        invariant(decoder.pendingBytes <= 4096, "decoder buffer grew to \(decoder.pendingBytes)")
        invariant(frameBytes + r.skippedBytes + decoder.pendingBytes <= fed + 4096,
                  "accounted \(frameBytes)+\(r.skippedBytes)+\(decoder.pendingBytes) bytes of \(fed)")
        for f in r.frames { checkFrame(f) }
    }

    static func checkFrame(_ f: DecodedFrame) {
        invariant(!f.raw.isEmpty, "a frame without bytes")
        invariant(f.address.utf8.count <= 4096, "address of \(f.address.utf8.count) bytes")
        invariant(f.code.utf8.count <= 64, "code of \(f.code.utf8.count) bytes")
    }
}
