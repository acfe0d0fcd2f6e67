import CSystemd
import Foundation
import Glibc
import Synchronization

/// Hands values from other threads to the event loop: an eventfd the loop watches and a
/// mutex-guarded list. `post` from any thread; `take` on the loop when the eventfd is readable.
public final class Mailbox<Message: Sendable>: Sendable {
    public let fd: Int32
    private let items = Mutex<[Message]>([])

    public init() throws(SystemError) {
        fd = try syscall("eventfd") { eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK)) }
    }

    deinit { close(fd) }

    public func post(_ m: Message) {
        items.withLock { $0.append(m) }
        var one: UInt64 = 1
        _ = try? syscall("write eventfd") { write(fd, &one, 8) }
    }

    /// Everything posted so far, in order (clears the eventfd).
    public func take() -> [Message] {
        var count: UInt64 = 0
        _ = try? syscall("read eventfd") { read(fd, &count, 8) }
        return items.withLock { list in
            let out = list
            list.removeAll()
            return out
        }
    }
}

/// Runs jobs one at a time on a background thread and delivers each result to a mailbox: the
/// place for work that grows with the configuration, so it never holds up the event loop.
public final class BackgroundWorker<Result: Sendable>: Sendable {
    public typealias Job = @Sendable () -> Result
    private let queue = Mutex<(jobs: [(Int, Job)], running: Bool)>(([], false))
    public let results: Mailbox<(Int, Result)>

    public init() throws(SystemError) { results = try Mailbox() }

    /// Queues `job`; its result arrives in `results` tagged with `ticket`.
    public func submit(ticket: Int, _ job: @escaping Job) {
        let start = queue.withLock { q -> Bool in
            q.jobs.append((ticket, job))
            if q.running { return false }
            q.running = true
            return true
        }
        if start { startThread() }
    }

    private func startThread() {
        let thread = Thread { [self] in drain() }
        thread.name = "onekeyd-worker"
        thread.start()
    }

    private func drain() {
        // Below the event loop: on a 2-core board a district-sized answer must not take the
        // CPU from a press (Linux nice is per thread; the loop keeps the process's).
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(onekey_gettid()), 10)
        while true {
            let next = queue.withLock { q -> (Int, Job)? in
                if q.jobs.isEmpty { q.running = false; return nil }
                return q.jobs.removeFirst()
            }
            guard let (ticket, job) = next else { return }
            results.post((ticket, job()))
        }
    }
}

/// A `BackgroundWorker` seen from the event loop: `run` hands a job to the worker thread, and
/// `then` runs on the loop with its result (delivered through the worker's eventfd mailbox).
public final class LoopWorker<Result: Sendable> {
    private let worker: BackgroundWorker<Result>
    private var waiting: [Int: (Result) -> Void] = [:]
    private var nextTicket = 0
    private var source: EventLoop.IO!

    public init(loop: EventLoop) throws(SystemError) {
        worker = try BackgroundWorker()
        source = try loop.addIO(fd: worker.results.fd) { [unowned self] _ in deliver() }
    }

    deinit { source.cancel() }

    /// Runs `job` off the loop; `then` runs on the loop with its result.
    public func run(_ job: @escaping @Sendable () -> Result, then: @escaping (Result) -> Void) {
        nextTicket += 1
        waiting[nextTicket] = then
        worker.submit(ticket: nextTicket, job)
    }

    /// Jobs whose results have not come back yet.
    public var inProgress: Int { waiting.count }

    private func deliver() {
        for (ticket, result) in worker.results.take() {
            waiting.removeValue(forKey: ticket)?(result)
        }
    }
}
