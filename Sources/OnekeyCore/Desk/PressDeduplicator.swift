/// Leading-edge dedup of CONTRACT §5: the first frame of a press is acted on at once; the same
/// frame from the same device again within `repeat_window_ms` of the previous one is the same
/// press (a held button keeps the press going) and is only counted.
///
/// Windows run on the monotonic clock, so a wall-clock step can neither split nor merge presses.
public struct PressDeduplicator: Sendable {
    public var windowNanos: UInt64
    private var lastSeen: [String: UInt64] = [:]
    private var lastPrune: UInt64 = 0

    public init(windowMs: Int) { windowNanos = UInt64(max(0, windowMs)) * 1_000_000 }

    /// True when `frame` repeats one seen within the window; records it either way.
    public mutating func isRepeat(_ frame: DecodedFrame, at monotonicNanos: UInt64) -> Bool {
        let key = "\(frame.driver.rawValue)/\(frame.address)/\(frame.code)/\(frame.kind?.rawValue ?? "")"
        defer {
            lastSeen[key] = monotonicNanos
            prune(now: monotonicNanos)
        }
        guard windowNanos > 0, let last = lastSeen[key] else { return false }
        return monotonicNanos &- last <= windowNanos
    }

    /// Forget keys whose window has passed, at most once per window, so memory stays bounded.
    private mutating func prune(now: UInt64) {
        guard now &- lastPrune > max(windowNanos, 1_000_000_000), lastSeen.count > 64 else { return }
        lastPrune = now
        lastSeen = lastSeen.filter { now &- $0.value <= windowNanos }
    }

    public var trackedKeys: Int { lastSeen.count }
}
