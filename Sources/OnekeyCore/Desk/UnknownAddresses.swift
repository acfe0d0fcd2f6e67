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
    /// At most this many reports per window over all addresses: a flood of distinct addresses
    /// (a hostile sender, a decoder spewing garbage) is only counted beyond it.
    public static let maxReportsPerWindow = 256
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
    private var budgetWindowStart: Int64?
    private var reportsInWindow = 0
    /// Reports held back by `maxReportsPerWindow`.
    public private(set) var throttled = 0

    public init(windowSeconds: Int, capacity: Int = 1024) {
        self.capacity = max(1, capacity)
        windowNanos = Int64(max(0, windowSeconds)) * 1_000_000_000
    }

    public var count: Int { entries.count }
    /// Length of the eviction queue (bounded by about 4 × capacity).
    var queueLength: Int { order.count - head }

    public enum Hearing: Sendable, Equatable {
        /// Only counted.
        case counted
        /// An event is due, reporting this many frames (since the address's previous report).
        case report(Int)
        /// Only counted: the first report held back by `maxReportsPerWindow` in this window.
        case throttled
    }

    /// Counts one frame; says whether an `unknown_device` event is due now (the first frame of an
    /// address, or the first after its window, while the window's report budget lasts).
    public mutating func heard(_ frame: DecodedFrame, at now: Moment) -> Hearing {
        framesHeard += 1
        let key = "\(frame.driver.rawValue)/\(frame.address)"
        var e = entries[key] ?? admit(frame, at: now)
        e.info.frames += 1
        e.info.lastHeard = now.wall
        if e.info.codes.count < Self.maxCodes { e.info.codes.insert(frame.code) }
        e.heardMono = now.monotonic
        e.sinceReport += 1
        var result = Hearing.counted
        if e.reportedMono.map({ now.monotonic - $0 >= windowNanos }) ?? true {
            if budgetWindowStart.map({ now.monotonic - $0 >= windowNanos }) ?? true {
                budgetWindowStart = now.monotonic
                reportsInWindow = 0
            }
            if reportsInWindow < Self.maxReportsPerWindow {
                reportsInWindow += 1
                result = .report(e.sinceReport)
                e.reportedMono = now.monotonic
                e.sinceReport = 0
            } else {
                throttled += 1
                if reportsInWindow == Self.maxReportsPerWindow { result = .throttled; reportsInWindow += 1 }
            }
        }
        entries[key] = e
        order.append((key, e.heardMono))
        if order.count - head > 4 * capacity + 64 { compact() }
        return result
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
