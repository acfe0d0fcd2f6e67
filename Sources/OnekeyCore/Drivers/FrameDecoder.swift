/// One thing a decoder found, in stream order.
public enum DecodeItem: Sendable, Equatable {
    /// A frame to act on.
    case frame(DecodedFrame)
    /// Bytes to send back on the port once everything before it is durably stored (a
    /// receiver's ACK), or at once when nothing precedes it (a NAK, a heartbeat's ACK).
    case reply([UInt8])
}

/// What a driver's decoder made of some bytes.
public struct DecodeResult: Sendable, Equatable {
    public var items: [DecodeItem] = []
    /// Bytes skipped as garbage, truncated frames or line noise.
    public var skippedBytes: Int = 0
    public init(items: [DecodeItem] = [], skippedBytes: Int = 0) { self.items = items; self.skippedBytes = skippedBytes }

    public var frames: [DecodedFrame] { items.compactMap { if case .frame(let f) = $0 { return f }; return nil } }
    public var replies: [[UInt8]] { items.compactMap { if case .reply(let r) = $0 { return r }; return nil } }
}

/// A byte-stream decoder for one port. Decoders keep partial frames between calls and
/// resynchronise byte by byte on anything that is not a valid frame; they never fail.
public protocol FrameDecoder: Sendable {
    var driver: DriverKind { get }
    mutating func feed(_ bytes: [UInt8]) -> DecodeResult
    /// Bytes held back waiting for the rest of a frame.
    var pendingBytes: Int { get }
}

/// The table of drivers: one small file per driver, one line here.
public enum DriverTable {
    /// `address`: the enrolment address of the device behind the port (evdev only).
    public static func decoder(for driver: DriverKind, address: String) -> any FrameDecoder {
        switch driver {
        case .ev1527: return EV1527Decoder()
        case .surgard: return SurGardDecoder()
        case .evdev: return EvdevDecoder(address: address)
        }
    }
}
