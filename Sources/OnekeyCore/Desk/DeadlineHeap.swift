/// The escalation timers of all alerts in one binary min-heap, on the monotonic clock
/// (signed nanoseconds: a deadline restored from the store may lie before this boot). Each entry carries a token; an
/// alert's schedule changing (a step fired, an ack, a close) issues a new token, so the old entry
/// becomes stale and is dropped when it reaches the top: a stale or duplicate firing is ignored.
public struct DeadlineHeap: Sendable {
    public struct Entry: Sendable, Equatable {
        public var due: Int64
        public var alert: String
        public var token: UInt64
    }

    private var heap: [Entry] = []
    /// The live token and deadline of each scheduled alert.
    private var live: [String: (due: Int64, token: UInt64)] = [:]
    private var lastToken: UInt64 = 0
    public private(set) var staleDropped = 0

    public init() {}

    public var count: Int { live.count }

    /// Schedules (or reschedules, or with nil unschedules) an alert.
    public mutating func schedule(_ alert: String, at due: Int64?) {
        guard let due else { live[alert] = nil; return }
        if live[alert]?.due == due { return }
        lastToken += 1
        live[alert] = (due, lastToken)
        push(Entry(due: due, alert: alert, token: lastToken))
    }

    /// The earliest live deadline, dropping stale entries on the way.
    public mutating func earliest() -> Int64? {
        while let top = heap.first {
            if live[top.alert]?.token == top.token { return top.due }
            _ = pop()
            staleDropped += 1
        }
        return nil
    }

    /// Removes and returns the live entries due at `t`, earliest first.
    public mutating func popDue(at t: Int64) -> [Entry] {
        var out = [Entry]()
        while let due = earliest(), due <= t, let e = pop() {
            live[e.alert] = nil
            out.append(e)
        }
        return out
    }

    /// The live deadline of `alert`, if scheduled.
    public func due(of alert: String) -> Int64? { live[alert]?.due }

    private static func less(_ a: Entry, _ b: Entry) -> Bool { (a.due, a.token) < (b.due, b.token) }

    private mutating func push(_ e: Entry) {
        heap.append(e)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.less(heap[i], heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func pop() -> Entry? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count && Self.less(heap[l], heap[m]) { m = l }
            if r < heap.count && Self.less(heap[r], heap[m]) { m = r }
            if m == i { break }
            heap.swapAt(i, m)
            i = m
        }
        return top
    }
}
