import Foundation
import Glibc
import OnekeyCore
import OnekeyLinux
import Synchronization

/// A GSM modem on a pty for tests (the hardware cannot exist here): `SimulatedModem` answers
/// on its own thread. The gateway opens `link`, a symlink to the pty's slave side that `replug`
/// points at a fresh pty (as udev would recreate /dev/ttyUSB2 after a USB replug).
public final class ModemSimulator: Sendable {
    public let link: String
    private let shared: Mutex<Shared>

    private struct Shared: @unchecked Sendable {  // PseudoTerminal is a class owned by this lock alone
        var modem = SimulatedModem()
        var pty: PseudoTerminal
        var due: [(at: UInt64, bytes: [UInt8])] = []
        var stopped = false
        var finished = false
        var bytesIn = 0
    }

    public init(directory: String) throws {
        let pty = try PseudoTerminal()
        link = directory + "/ttyMODEM"
        try? FileManager.default.removeItem(atPath: link)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: pty.path)
        shared = Mutex(Shared(pty: pty))
        Thread.detachNewThread { [self] in run() }
    }

    deinit { stop() }

    public func stop() {
        shared.withLock { $0.stopped = true }
        for _ in 0..<200 where !shared.withLock({ $0.finished }) { usleep(5_000) }
        shared.withLock { $0.pty.close() }
    }

    /// Reads or changes the simulated modem (SIM, registration, failures, …) under the lock.
    @discardableResult
    public func with<T: Sendable>(_ body: (inout SimulatedModem) -> T) -> T { shared.withLock { body(&$0.modem) } }

    /// An SMS arrives from `sender`: stored, announced with `+CMTI`.
    public func injectSMS(from sender: String, text: String) {
        shared.withLock { s in s.due.append((monotonicNanos(), s.modem.deliver(from: sender, text: text))) }
    }

    public func setRegistration(_ stat: Int) {
        shared.withLock { s in s.due.append((monotonicNanos(), s.modem.registrationChanged(stat))) }
    }

    /// Raw bytes on the line (noise, a half line, …).
    public func inject(_ bytes: [UInt8]) { shared.withLock { $0.due.append((monotonicNanos(), bytes)) } }

    /// The modem is unplugged and plugged in again: the old pty closes (the gateway's port fails),
    /// the modem powers up with default settings, and `link` names a new pty.
    public func replug() throws {
        let fresh = try PseudoTerminal()
        shared.withLock { s in
            s.pty.close()
            s.pty = fresh
            s.due.removeAll()
            s.modem.powerCycle()
        }
        try? FileManager.default.removeItem(atPath: link)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: fresh.path)
    }

    /// The modem restarts behind an open port (a UART modem): settings lost, `RDY` sent.
    public func restartInPlace() {
        shared.withLock { s in
            s.modem.powerCycle()
            s.due.removeAll()
            s.due.append((monotonicNanos(), Array("\r\nRDY\r\n".utf8)))
        }
    }

    /// Waits (polling the state every 10 ms) until `condition` holds; false after `timeoutMs`.
    public func wait(timeoutMs: Int, _ condition: (SimulatedModem) -> Bool) -> Bool {
        let end = monotonicNanos() + UInt64(timeoutMs) * 1_000_000
        while monotonicNanos() < end {
            if shared.withLock({ condition($0.modem) }) { return true }
            usleep(10_000)
        }
        return shared.withLock { condition($0.modem) }
    }

    private func run() {
        while !shared.withLock({ $0.stopped }) {
            let fd = shared.withLock { $0.pty.master }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = (try? syscall("poll modem pty") { poll(&pfd, 1, 5) }) ?? 0
            var input = [UInt8]()
            if ready > 0, pfd.revents & Int16(POLLIN) != 0 {
                if let got = try? readAvailable(fd, what: "modem pty") { input = got }
            } else if ready > 0 {
                usleep(5_000)  // nobody has the slave open: POLLHUP until the gateway opens it
            }
            let now = monotonicNanos()
            let writes: [UInt8] = shared.withLock { s in
                s.bytesIn += input.count
                for reply in s.modem.receive(input) {
                    s.due.append((now + UInt64(reply.delayMs) * 1_000_000, reply.bytes))
                }
                var out = [UInt8]()
                while let first = s.due.indices.first(where: { s.due[$0].at <= now }) {
                    out += s.due.remove(at: first).bytes
                }
                return out
            }
            if !writes.isEmpty { try? writeAll(fd, writes, what: "modem pty", timeoutMs: 200) }
        }
        shared.withLock { $0.finished = true }
    }
}
