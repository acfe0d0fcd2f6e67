/// An address heard on a receiver that no enrolled device has: the installer's "learn mode"
/// (`onekeyctl unknown`) and the neighbours' doorbells alike.
public struct UnknownAddress: Sendable, Equatable {
    public var driver: DriverKind
    public var address: String
    /// Codes heard from it (key nibbles, Contact ID codes), at most `UnknownAddressTable.maxCodes`.
    public var codes: Set<String>
    public var frames: Int
    public var firstHeard: Timestamp
    public var lastHeard: Timestamp
}

/// Frames from unenrolled addresses, counted in memory (CONTRACT §5): each address is reported
/// (an `unknown_device` event) at most once per window, carrying the frames heard since its last
/// report. The table holds at most `capacity` addresses; the least recently heard is evicted.
/// Windows run on the monotonic clock.
public struct UnknownAddressTable: Sendable {
    public static let maxCodes = 64
    public let capacity: Int
    public var windowNanos: Int64
    /// Addresses dropped to make room for newer ones.
    public private(set) var evicted = 0
    /// Frames heard but not yet reported, over all addresses (only counted).
    public private(set) var framesHeard = 0

    private struct Entry: Sendable {
        var info: UnknownAddress
        var heardMono: Int64
        var reportedMono: Int64?
        var sinceReport: Int
    }
    private var entries: [String: Entry] = [:]
    /// Every hearing in order (key, instant); an item whose instant is no longer its key's last
    /// hearing is stale. The first live item is the least recently heard address: eviction is
    /// amortized O(1) however hostile the noise, and the queue is compacted as it grows.
    private var order: [(key: String, heard: Int64)] = []
    private var head = 0

    public init(windowSeconds: Int, capacity: Int = 1024) {
        self.capacity = max(1, capacity)
        windowNanos = Int64(max(0, windowSeconds)) * 1_000_000_000
    }

    public var count: Int { entries.count }

    /// Counts one frame. Returns the number of frames to report when an event is due now
    /// (the first frame of an address, or the first after its window), nil when only counted.
    public mutating func heard(_ frame: DecodedFrame, at now: Moment) -> Int? {
        framesHeard += 1
        let key = "\(frame.driver.rawValue)/\(frame.address)"
        var e = entries[key] ?? admit(frame, at: now)
        e.info.frames += 1
        e.info.lastHeard = now.wall
        if e.info.codes.count < Self.maxCodes { e.info.codes.insert(frame.code) }
        e.heardMono = now.monotonic
        e.sinceReport += 1
        var report: Int?
        if e.reportedMono.map({ now.monotonic - $0 >= windowNanos }) ?? true {
            report = e.sinceReport
            e.reportedMono = now.monotonic
            e.sinceReport = 0
        }
        entries[key] = e
        order.append((key, e.heardMono))
        if order.count - head > 4 * capacity + 64 { compact() }
        return report
    }

    private mutating func admit(_ frame: DecodedFrame, at now: Moment) -> Entry {
        while entries.count >= capacity && head < order.count {
            let (key, heard) = order[head]
            head += 1
            if entries[key]?.heardMono == heard {
                entries[key] = nil
                evicted += 1
            }
        }
        return Entry(info: UnknownAddress(driver: frame.driver, address: frame.address, codes: [], frames: 0,
                                          firstHeard: now.wall, lastHeard: now.wall),
                     heardMono: now.monotonic, reportedMono: nil, sinceReport: 0)
    }

    private mutating func compact() {
        order = entries.map { ($0.key, $0.value.heardMono) }.sorted { $0.heard < $1.heard }
        head = 0
    }

    /// Forgets an address (it was enrolled by a reload).
    public mutating func forget(driver: DriverKind, address: String) {
        entries["\(driver.rawValue)/\(address)"] = nil
    }

    /// Everything in the table, most recently heard first.
    public var addresses: [UnknownAddress] {
        entries.values.sorted { ($0.heardMono, $0.info.address) > ($1.heardMono, $1.info.address) }.map(\.info)
    }
}
