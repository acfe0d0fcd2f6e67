/// What a driver's decoder made of some bytes.
public struct DecodeResult: Sendable, Equatable {
    public var frames: [DecodedFrame] = []
    /// Bytes skipped as garbage, truncated frames or line noise.
    public var skippedBytes: Int = 0
    public init(frames: [DecodedFrame] = [], skippedBytes: Int = 0) { self.frames = frames; self.skippedBytes = skippedBytes }
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
    public static func decoder(for driver: DriverKind) -> (any FrameDecoder)? {
        switch driver {
        case .ev1527: return EV1527Decoder()
        case .surgard, .evdev: return nil  // slot in as their issues land
        }
    }
}
