import Glibc
import OnekeyCore

/// The modem's AT port on the gateway's event loop (loop-agnostic): it owns the descriptor and
/// the pure `ModemSession`. The owner watches `fd` for readability (calling `readable()`), arms
/// one timer for `nextDeadline` (calling `tick()`), and retries `open()` with backoff while
/// `fd < 0`. Events (SMS confirmed/failed, replies received, calls, state) go to `onEvent`,
/// synchronously, on the caller's thread. Not thread-safe: use it from the loop only.
public final class ModemLine {
    public private(set) var session: ModemSession
    public private(set) var fd: Int32 = -1
    public let path: String
    public let baud: Int
    private let clock: () -> Int64
    private let onEvent: (ModemEvent) -> Void

    /// - Parameter clock: monotonic milliseconds.
    public init(path: String, baud: Int, timings: ModemTimings = .standard, clock: @escaping () -> Int64,
                onEvent: @escaping (ModemEvent) -> Void) {
        self.path = path; self.baud = baud; self.clock = clock; self.onEvent = onEvent
        session = ModemSession(path: path, timings: timings)
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    public static func monotonicMilliseconds() -> Int64 { Int64(monotonicNanos() / 1_000_000) }

    /// Opens the port and starts the init sequence. Throws when the port cannot be opened.
    public func open() throws(SystemError) {
        guard fd < 0 else { return }
        fd = try SerialPort.open(path, line: SerialLine(baud: baud, parity: .none, dataBits: 8))
        apply(session.portOpened(at: clock()))
    }

    /// The descriptor is readable (or hung up).
    public func readable() {
        guard fd >= 0 else { return }
        while true {
            let got: [UInt8]?
            do { got = try readAvailable(fd, max: 4096, what: path) } catch {
                lost("read failed: \(error)"); return
            }
            guard let bytes = got else { lost("end of file"); return }
            if bytes.isEmpty { return }
            apply(session.received(bytes, at: clock()))
            if fd < 0 { return }
        }
    }

    public func tick() { apply(session.tick(at: clock())) }

    /// When `tick()` is due (monotonic ms), nil when nothing is timed.
    public var nextDeadline: Int64? { session.nextDeadline }

    public func send(_ sms: OutgoingSMS) {
        session.sendSMS(sms)
        apply(session.poke(at: clock()))
    }

    public func call(_ request: CallRequest) {
        session.placeCall(request)
        apply(session.poke(at: clock()))
    }

    public func close() {
        guard fd >= 0 else { return }
        Glibc.close(fd)
        fd = -1
        apply(session.portClosed(at: clock()))
    }

    private func lost(_ why: String) {
        onEvent(.note(.warning, "modem port \(path): \(why); reopening"))
        close()
    }

    private func apply(_ step: ModemStep) {
        if !step.writes.isEmpty, fd >= 0 {
            do { try writeAll(fd, step.writes, what: path, timeoutMs: 1000) } catch {
                for e in step.events { onEvent(e) }
                lost("write failed: \(error)")
                return
            }
        }
        for e in step.events { onEvent(e) }
    }
}
