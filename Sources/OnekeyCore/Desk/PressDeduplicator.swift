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
        let key = Self.key(frame.driver, frame.address, frame.code, restore: frame.kind == .restore)
        defer {
            lastSeen[key] = monotonicNanos
            prune(now: monotonicNanos)
        }
        guard windowNanos > 0, let last = lastSeen[key] else { return false }
        return monotonicNanos &- last <= windowNanos
    }

    /// One press's identity: the same code from the same address (a Sur-Gard restore of a code is
    /// another message than the event itself).
    static func key(_ driver: DriverKind, _ address: String, _ code: String, restore: Bool) -> String {
        "\(driver.rawValue)/\(address)/\(code)\(restore ? "/R" : "")"
    }

    /// Seeds the windows from events stored before a restart (CONTRACT §5: repeats stay repeats
    /// across a restart). An event's age is measured on the wall clock, as that is all a stored
    /// event has; an event stamped in the future (the clock stepped back) counts as heard now.
    public mutating func seed(_ events: [GatewayEvent], at now: Moment) {
        for e in events where e.device != nil && !e.test {
            let age = max(0, now.wall.milliseconds - e.receivedAt.milliseconds)
            guard UInt64(age) * 1_000_000 <= windowNanos else { continue }
            let heard = now.monotonicNanos > UInt64(age) * 1_000_000 ? now.monotonicNanos - UInt64(age) * 1_000_000 : 0
            // Only Sur-Gard frames carry a restore of their own; other drivers' restores come from `codes`.
            let key = Self.key(e.driver, e.address, e.code, restore: e.driver == .surgard && e.kind == .restore)
            if lastSeen[key].map({ $0 < heard }) ?? true { lastSeen[key] = heard }
        }
    }

    /// Forget keys whose window has passed, at most once per window, so memory stays bounded.
    private mutating func prune(now: UInt64) {
        guard now &- lastPrune > max(windowNanos, 1_000_000_000), lastSeen.count > 64 else { return }
        lastPrune = now
        lastSeen = lastSeen.filter { now &- $0.value <= windowNanos }
    }

    public var trackedKeys: Int { lastSeen.count }
}
