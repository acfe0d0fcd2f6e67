import CSystemd
import Glibc

/// The daemon's one event loop: libsystemd's sd-event (epoll, timerfd, signalfd and the service
/// watchdog in one place). Every descriptor the daemon reads is a source here, and every handler
/// runs on the thread that called `run()`. The type is deliberately not `Sendable`: whatever
/// holds it (and its handlers' state) stays on that thread, and the compiler checks it.
public final class EventLoop {
    let handle: OpaquePointer

    /// Dispatch order among sources pending in the same iteration: lower runs first.
    public enum Priority: Int64 {
        case deadline = -20   // the escalation timer: a due step goes before the next read
        case alarm = -10      // ports, the broker socket
        case normal = 0       // control clients, udev, housekeeping
        case batch = 10       // work gathered over many events (PUBACK deletes)
    }

    public init() throws(SystemError) {
        var e: OpaquePointer?
        let rc = sd_event_new(&e)
        guard rc >= 0, let e else { throw SystemError("sd_event_new", errno: -rc) }
        handle = e
    }

    deinit { sd_event_unref(handle) }

    /// Runs until `exit(_:)`; returns its code.
    public func run() -> Int32 { sd_event_loop(handle) }

    public func exit(_ code: Int32) { _ = sd_event_exit(handle, code) }

    /// Sends WATCHDOG=1 from the loop itself at half of `WatchdogSec=` (only while it runs).
    @discardableResult
    public func enableWatchdog() -> Bool { sd_event_set_watchdog(handle, 1) > 0 }

    /// CLOCK_MONOTONIC as of this iteration (cheap: no syscall inside a handler).
    public var now: UInt64 {
        var usec: UInt64 = 0
        _ = sd_event_now(handle, CLOCK_MONOTONIC, &usec)
        return usec * 1000
    }

    /// One registration. Keep it to keep the handler; `cancel()` (or dropping it) removes it.
    public class Source {
        fileprivate var pointer: OpaquePointer?
        fileprivate init() {}

        public func cancel() {
            if let p = pointer { sd_event_source_disable_unref(p); pointer = nil }
        }

        public var isCancelled: Bool { pointer == nil }

        public func setEnabled(_ on: Bool) {
            if let p = pointer { _ = sd_event_source_set_enabled(p, on ? Int32(SD_EVENT_ON) : Int32(SD_EVENT_OFF)) }
        }

        fileprivate func setPriority(_ priority: Priority) {
            if let p = pointer { _ = sd_event_source_set_priority(p, priority.rawValue) }
        }

        deinit { cancel() }
    }

    /// A readable/writable descriptor (epoll events, level-triggered).
    public final class IO: Source {
        fileprivate let action: (UInt32) -> Void
        fileprivate init(_ action: @escaping (UInt32) -> Void) { self.action = action }

        public func setEvents(_ events: UInt32) {
            if let p = pointer { _ = sd_event_source_set_io_events(p, events) }
        }
    }

    /// A one-shot CLOCK_MONOTONIC timer that can be re-armed: a timerfd of its own, armed with a
    /// relative delay and watched as an io source. (sd-event's own time sources arm absolute
    /// timerfds; libfaketime — with which the clock-step tests run the real daemon — shifts
    /// absolute deadlines by its offset even on CLOCK_MONOTONIC, so those would never fire
    /// there. Relative arming behaves the same everywhere.)
    public final class Timer: Source {
        fileprivate let action: () -> Void
        fileprivate let fd: Int32
        fileprivate init(fd: Int32, _ action: @escaping () -> Void) { self.fd = fd; self.action = action }
        public private(set) var armed = false

        /// Fires once at `monotonicNanos` (or at once if that has passed).
        public func arm(atMonotonicNanos t: UInt64) {
            let now = monotonicNanos()
            set(delay: t > now ? t - now : 1)
        }

        public func arm(afterSeconds s: Double) { set(delay: max(1, UInt64(max(0, s) * 1e9))) }

        public func disarm() { set(delay: 0) }

        private func set(delay: UInt64) {
            guard pointer != nil else { return }
            var spec = itimerspec()
            spec.it_value.tv_sec = Int(delay / 1_000_000_000)
            spec.it_value.tv_nsec = Int(delay % 1_000_000_000)
            _ = timerfd_settime(fd, 0, &spec, nil)  // 0 (relative); a zero delay disarms
            armed = delay > 0
        }

        /// Reads the expiration count; true if the timer really expired (not a stale wake-up).
        fileprivate func expired() -> Bool {
            var count: UInt64 = 0
            let n = Glibc.read(fd, &count, 8)
            guard n == 8, count > 0 else { return false }
            armed = false
            return true
        }

        public override func cancel() {
            let wasOpen = pointer != nil
            super.cancel()
            if wasOpen { Glibc.close(fd) }
        }
    }

    public final class Signal: Source {
        fileprivate let action: () -> Void
        fileprivate init(_ action: @escaping () -> Void) { self.action = action }
    }

    public func addIO(fd: Int32, events: UInt32 = UInt32(EPOLLIN.rawValue), priority: Priority = .normal,
                      _ action: @escaping (UInt32) -> Void) throws(SystemError) -> IO {
        let src = IO(action)
        var s: OpaquePointer?
        let rc = sd_event_add_io(handle, &s, fd, events, { _, _, revents, ud in
            let me = Unmanaged<IO>.fromOpaque(ud!).takeUnretainedValue()
            withExtendedLifetime(me) { me.action(revents) }
            return 0
        }, Unmanaged.passUnretained(src).toOpaque())
        guard rc >= 0 else { throw SystemError("sd_event_add_io(\(fd))", errno: -rc) }
        src.pointer = s
        src.setPriority(priority)
        return src
    }

    /// A timer, disarmed until `arm`.
    public func addTimer(priority: Priority = .normal, _ action: @escaping () -> Void) throws(SystemError) -> Timer {
        let fd = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        guard fd >= 0 else { throw SystemError("timerfd_create") }
        let src = Timer(fd: fd, action)
        var s: OpaquePointer?
        let rc = sd_event_add_io(handle, &s, fd, UInt32(EPOLLIN.rawValue), { _, _, _, ud in
            let me = Unmanaged<Timer>.fromOpaque(ud!).takeUnretainedValue()
            withExtendedLifetime(me) { if me.expired() { me.action() } }
            return 0
        }, Unmanaged.passUnretained(src).toOpaque())
        guard rc >= 0 else { Glibc.close(fd); throw SystemError("sd_event_add_io(timerfd)", errno: -rc) }
        src.pointer = s
        src.setPriority(priority)
        return src
    }

    /// A signal delivered through signalfd. The signal must already be blocked in every thread
    /// (`blockSignals` at the top of main).
    public func addSignal(_ signo: Int32, _ action: @escaping () -> Void) throws(SystemError) -> Signal {
        let src = Signal(action)
        var s: OpaquePointer?
        let rc = sd_event_add_signal(handle, &s, signo, { _, _, ud in
            let me = Unmanaged<Signal>.fromOpaque(ud!).takeUnretainedValue()
            withExtendedLifetime(me) { me.action() }
            return 0
        }, Unmanaged.passUnretained(src).toOpaque())
        guard rc >= 0 else { throw SystemError("sd_event_add_signal(\(signo))", errno: -rc) }
        src.pointer = s
        src.setPriority(.normal)
        return src
    }

    /// Blocks `signals` in the calling thread (and so in every thread it starts later).
    public static func blockSignals(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_SETMASK, &set, nil)
    }
}
