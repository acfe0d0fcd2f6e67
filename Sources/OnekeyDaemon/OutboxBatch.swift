import CZlib
import Foundation
import OnekeyCore

/// The outbox messages of one commit, stored as one row (`outbox_batches`): consecutive seqs,
/// one `created_at`, the messages serialized and deflated with a dictionary of the payloads'
/// JSON keys. A press's five messages (event, alert, device, two pages: 1.76 KB of JSON, four
/// 512-byte pages as rows of their own) become one ~330-byte row that shares a leaf page.
///
/// Body: one format byte, then the records — per message: varint topic length, topic, retain
/// byte, varint key length, key, varint payload length, payload.
///   - format 0: the records as they are (migrated rows; a body deflate would not shrink);
///   - format 1: the records deflated (raw deflate, 15-bit window) with `dictionaryV1`.
/// A format, once written, is read forever: a new dictionary is a new format byte.
struct OutboxBatch: Equatable {
    var firstSeq: Int64
    var createdAt: Timestamp
    var messages: [OutboundMessage]

    var lastSeq: Int64 { firstSeq + Int64(messages.count) - 1 }
    /// The greatest message id in the batch (the store seeds its id source with it).
    var lastKey: String { messages.map(\.key).max() ?? "" }

    /// Most messages in one row: a held backlog written at once becomes several rows, and a read
    /// of the rows after a seq looks back at most this far (`Store.outbox(after:)`).
    static let maxMessages = 64

    struct Damaged: Error, CustomStringConvertible {
        var firstSeq: Int64
        var why: String
        var description: String { "outbox row \(firstSeq) cannot be read: \(why)" }
    }

    /// Splits rows into batches: runs of consecutive seqs with one `createdAt`, at most `maxMessages`.
    static func grouping(_ rows: [OutboxRow]) -> [OutboxBatch] {
        var out: [OutboxBatch] = []
        for r in rows {
            if var last = out.last, last.lastSeq + 1 == r.seq, last.createdAt == r.createdAt, last.messages.count < maxMessages {
                last.messages.append(r.message)
                out[out.count - 1] = last
            } else {
                out.append(OutboxBatch(firstSeq: r.seq, createdAt: r.createdAt, messages: [r.message]))
            }
        }
        return out
    }

    var rows: [OutboxRow] {
        messages.enumerated().map { OutboxRow(seq: firstSeq + Int64($0.offset), message: $0.element, createdAt: createdAt) }
    }

    // MARK: Records

    static func records(_ messages: [OutboundMessage]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(messages.reduce(0) { $0 + $1.topic.utf8.count + $1.key.utf8.count + $1.payload.count + 8 })
        for m in messages {
            appendField(Array(m.topic.utf8), to: &out)
            out.append(m.retain ? 1 : 0)
            appendField(Array(m.key.utf8), to: &out)
            appendField(m.payload, to: &out)
        }
        return out
    }

    static func parseRecords(_ b: [UInt8], count: Int) throws -> [OutboundMessage] {
        var i = 0
        func varint() throws -> Int {
            var v = 0, shift = 0
            while true {
                guard i < b.count, shift < 35 else { throw ParseError("truncated length") }
                let byte = b[i]; i += 1
                v |= Int(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return v }
                shift += 7
            }
        }
        func field() throws -> ArraySlice<UInt8> {
            let n = try varint()
            guard n <= b.count - i else { throw ParseError("field runs past the end") }
            defer { i += n }
            return b[i..<i + n]
        }
        var out: [OutboundMessage] = []
        while i < b.count {
            let topic = String(decoding: try field(), as: UTF8.self)
            guard i < b.count, b[i] <= 1 else { throw ParseError("bad retain flag") }
            let retain = b[i] == 1; i += 1
            let key = String(decoding: try field(), as: UTF8.self)
            let payload = Array(try field())
            out.append(OutboundMessage(topic: topic, payload: payload, retain: retain, key: key))
            guard out.count <= count else { throw ParseError("more messages than the row says (\(count))") }
        }
        guard out.count == count else { throw ParseError("\(out.count) messages, the row says \(count)") }
        return out
    }

    private static func appendField(_ f: [UInt8], to out: inout [UInt8]) {
        var n = f.count
        while n >= 0x80 { out.append(UInt8(n & 0x7F) | 0x80); n >>= 7 }
        out.append(UInt8(n))
        out += f
    }

    struct ParseError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    // MARK: Body

    func body(_ deflater: inout Deflater) -> [UInt8] {
        let plain = Self.records(messages)
        if let packed = deflater.deflate(plain), packed.count < plain.count { return [1] + packed }
        return [0] + plain
    }

    static func decode(firstSeq: Int64, count: Int, createdAt: Timestamp, body: [UInt8]) throws -> OutboxBatch {
        do {
            guard let format = body.first else { throw ParseError("empty body") }
            let rest = Array(body.dropFirst())
            let plain: [UInt8]
            switch format {
            case 0: plain = rest
            case 1: plain = try inflate(rest, limit: count * maxRecordBytes)
            default: throw ParseError("unknown format \(format)")
            }
            return OutboxBatch(firstSeq: firstSeq, createdAt: createdAt, messages: try parseRecords(plain, count: count))
        } catch {
            throw Damaged(firstSeq: firstSeq, why: "\(error)")
        }
    }

    /// No message of ours comes near this (the largest, an alert's state, is under 2 KB); it bounds
    /// what a damaged row can make the reader allocate.
    static let maxRecordBytes = 256 << 10

    /// Reads a format-1 body; throws on anything but exactly one complete stream within `limit` bytes.
    static func inflate(_ input: [UInt8], limit: Int) throws -> [UInt8] {
        var z = z_stream()
        guard inflateInit2_(&z, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw ParseError("inflateInit failed") }
        defer { inflateEnd(&z) }
        guard dictionaryV1.withUnsafeBufferPointer({ inflateSetDictionary(&z, $0.baseAddress, uInt($0.count)) }) == Z_OK else {
            throw ParseError("inflateSetDictionary failed")
        }
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 8192)
        var input = input
        let rc: Int32 = input.withUnsafeMutableBufferPointer { inp in
            z.next_in = inp.baseAddress
            z.avail_in = uInt(inp.count)
            while true {
                let r: Int32 = chunk.withUnsafeMutableBufferPointer { c in
                    z.next_out = c.baseAddress
                    z.avail_out = uInt(c.count)
                    return CZlib.inflate(&z, Z_NO_FLUSH)
                }
                out += chunk[0..<(chunk.count - Int(z.avail_out))]
                if r != Z_OK || out.count > limit { return r == Z_OK ? Z_BUF_ERROR : r }
                if z.avail_in == 0 && z.avail_out != 0 { return Z_DATA_ERROR }  // ended without the stream's end
            }
        }
        guard rc == Z_STREAM_END else { throw ParseError(out.count > limit ? "inflates past \(limit) bytes" : "inflate: \(rc)") }
        guard z.avail_in == 0 else { throw ParseError("bytes after the deflate stream") }
        return out
    }

    /// Strings the payloads repeat (JSON keys and fixed values, topic prefixes), most frequent
    /// last as zlib prefers. Frozen: rows written with it are read with it.
    static let dictionaryV1: [UInt8] = Array("""
        onekey/v1/gateways/onekey/v1/members/"resolved_by":"note":"acked_by":"acked_at":null,"resolved_at":null,\
        "reason":"escalated","reason":"reminder","reason":"fallback","state":"acked","state":"resolved",\
        "kind":"supervision_loss","kind":"low_battery","kind":"tamper","kind":"fall","kind":"test",\
        "driver":"surgard","driver":"ev1527","battery":"ok","battery":"low","online":true,"online":false,"last_seen":"\
        {"id":"","gateway":"","device":"","address":"","code":"","received_at":"","raw":"","alert":"","test":false,\
        "grid":"grid-","resident":"","location":"","raised_at":"","last_press_at":"","press_count":1,"step":0,\
        "paged":["m-"],"acked_by":null,"acked_at":null,"resolved_at":null,"resolved_by":null,"note":null,\
        "next_step_at":"","unattended":false,"msg_id":"{"alert":"","member":"m-","reason":"raised","kind":"panic",\
        "state":"open","device":"btn-","resident":"","location":"","grid":"grid-","grid_name":"","step":0,\
        "press_count":1,"raised_at":"","paged_at":"","test":false,"msg_id":"01
        """.utf8)
}

/// One deflate stream, reset and reused for every batch, allocated once. A 4 KiB window and
/// memLevel 6 (~48 KiB of state instead of zlib's default ~270 KiB): a press's batch is ~2 KB
/// and the dictionary 1 KB, so a larger window finds nothing more. The reader's 15-bit window
/// reads streams made with any smaller one.
struct Deflater: ~Copyable {
    private let z: UnsafeMutablePointer<z_stream>
    private let ready: Bool

    init() {
        z = .allocate(capacity: 1)
        z.initialize(to: z_stream())
        // Level 1: a press's batch fits one 512-byte leaf at any level (level 6 is ~15 % smaller).
        ready = deflateInit2_(z, 1, Z_DEFLATED, -12, 6, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK
    }

    deinit {
        if ready { deflateEnd(z) }
        z.deinitialize(count: 1)
        z.deallocate()
    }

    /// Whether the stream is reset with the dictionary loaded (`prime`).
    private var primed = false

    /// Resets the stream and loads the dictionary now, so that the next `deflate` only
    /// compresses: the store calls it after a press's pages are out, off the next press's path.
    mutating func prime() {
        guard ready, !primed else { return }
        primed = deflateReset(z) == Z_OK
            && OutboxBatch.dictionaryV1.withUnsafeBufferPointer({ deflateSetDictionary(z, $0.baseAddress, uInt($0.count)) }) == Z_OK
    }

    /// The raw deflate of `input` with `dictionaryV1`, or nil if zlib fails (the caller stores plain).
    mutating func deflate(_ input: [UInt8]) -> [UInt8]? {
        prime()
        guard primed else { return nil }
        primed = false
        var out = [UInt8](repeating: 0, count: Int(deflateBound(z, uLong(input.count))))
        var input = input
        let rc: Int32 = input.withUnsafeMutableBufferPointer { inp in
            out.withUnsafeMutableBufferPointer { o in
                z.pointee.next_in = inp.baseAddress
                z.pointee.avail_in = uInt(inp.count)
                z.pointee.next_out = o.baseAddress
                z.pointee.avail_out = uInt(o.count)
                return CZlib.deflate(z, Z_FINISH)
            }
        }
        guard rc == Z_STREAM_END else { return nil }
        out.removeLast(Int(z.pointee.avail_out))
        return out
    }
}
