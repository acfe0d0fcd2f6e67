import OnekeyCore
import OnekeyLinux

/// What a job run off the loop hands back.
enum OffloadResult: Sendable {
    /// A control answer, already serialized (a 20,000-device list is megabytes of JSON).
    case answer([UInt8])
    case config(Result<AlertDesk.PreparedConfig, ConfigError>)
}

/// Work that grows with the configuration (roster-gap searches, device lists, reload's parse and
/// validation) runs on a background thread against an immutable snapshot, and its result comes
/// back to the loop through an eventfd mailbox: it never delays a frame, a timer or a PUBACK.
final class Offload {
    private let worker: BackgroundWorker<OffloadResult>
    private var waiting: [Int: (OffloadResult) -> Void] = [:]
    private var nextTicket = 0
    private var source: EventLoop.IO!

    init(loop: EventLoop) throws {
        worker = try BackgroundWorker()
        source = try loop.addIO(fd: worker.results.fd) { [unowned self] _ in deliver() }
    }

    /// Runs `job` off the loop; `then` runs on the loop with its result.
    func run(_ job: @escaping @Sendable () -> OffloadResult, then: @escaping (OffloadResult) -> Void) {
        nextTicket += 1
        waiting[nextTicket] = then
        worker.submit(ticket: nextTicket, job)
    }

    var inProgress: Int { waiting.count }

    private func deliver() {
        for (ticket, result) in worker.results.take() {
            waiting.removeValue(forKey: ticket)?(result)
        }
    }
}
