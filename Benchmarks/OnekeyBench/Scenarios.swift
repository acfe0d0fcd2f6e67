import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import OnekeyLinux

/// The real daemon on a generated configuration, started with a NOTIFY_SOCKET the bench owns.
final class BenchDaemon {
    let daemon: DaemonProcess
    let pty: PseudoTerminal
    let notify: NotifySocket
    /// Start (exec) → READY=1, in ms.
    let readyMs: Double
    /// RSS right after READY.
    let startRSS: Int

    init(broker: Broker, devices: Int, grids: Int, members: Int, repeatWindowMs: Int, pressMergeSeconds: Int) throws {
        pty = try PseudoTerminal()
        notify = try NotifySocket()
        var o = DistrictConfig.Options()
        o.brokerPort = broker.port
        o.portPath = pty.path
        o.repeatWindowMs = repeatWindowMs
        o.pressMergeSeconds = pressMergeSeconds
        daemon = try DaemonProcess { state, socket in
            o.stateDir = state
            o.socket = socket
            return DistrictConfig.generate(devices: devices, grids: grids, members: members, options: o)
        }
        daemon.environment["NOTIFY_SOCKET"] = notify.path
        let t0 = monotonicNanos()
        try daemon.start(waitReady: false)
        guard let i = notify.wait(for: "READY=1", timeout: 60) else { throw HarnessError("no READY=1 from onekeyd:\n\(daemon.log)") }
        readyMs = Double(notify.all[i].nanos - t0) / 1e6
        usleep(100_000)
        startRSS = ProcStats.rssKiB(daemon.pid)
        try daemon.waitForControl(timeout: 20)
    }

    var pid: Int32 { daemon.pid }

    func status() throws -> JSON { try daemon.control(["cmd": "status"]) }

    func counter(_ name: String) throws -> Int { Int(try status()["counters"]?[name]?.intValue ?? -1) }

    /// Polls `status` until `done` holds or `timeout` passes; returns when it held (monotonic ns) or nil.
    func waitUntil(timeout: Double, _ done: (JSON) -> Bool) throws -> UInt64? {
        let deadline = monotonicNanos() + UInt64(timeout * 1e9)
        while monotonicNanos() < deadline {
            if done(try status()) { return monotonicNanos() }
            usleep(5_000)
        }
        return nil
    }

    func stop() { daemon.stop() }
}

struct IdleFigures { var wakeupsPerMinute: Double; var bytesPerHour: Double; var cpuPercent: Double }

enum Scenarios {
    static func frame(_ device: Int, key: UInt8 = 8) -> [UInt8] { EV1527Decoder.encode(address: DistrictConfig.address(device), key: key)! }

    /// Nothing happens for `seconds`: how often the daemon wakes and what it writes.
    static func idle(_ d: BenchDaemon, seconds: Double) -> IdleFigures {
        let cs0 = ProcStats.contextSwitches(d.pid), wb0 = ProcStats.writeBytes(d.pid), cpu0 = ProcStats.cpuTicks(d.pid)
        usleep(UInt32(seconds * 1e6))
        let cs1 = ProcStats.contextSwitches(d.pid), wb1 = ProcStats.writeBytes(d.pid), cpu1 = ProcStats.cpuTicks(d.pid)
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        return IdleFigures(wakeupsPerMinute: Double(ProcStats.switchesBetween(cs0, cs1)) * 60 / seconds, bytesPerHour: Double(wb1 - wb0) * 3600 / seconds,
                           cpuPercent: Double(cpu1 - cpu0) / hz / seconds * 100)
    }

    /// Device `n` pressed once: last byte written → its page received (ms), nil if no page came
    /// within 5 s.
    static func press(_ d: BenchDaemon, sub: Subscriber, device n: Int) throws -> Double? {
        let device = DistrictConfig.deviceID(n)
        let before = sub.count
        let t0 = monotonicNanos()
        try d.pty.write(frame(n))
        guard let (_, m) = sub.next(after: before, timeout: 5, where: { $0.json?["device"]?.stringValue == device }) else { return nil }
        return Double(m.receivedNanos - t0) / 1e6
    }

    /// One press at a time, each a new alert on device i % devices: last byte written → page received.
    static func pressLatency(_ d: BenchDaemon, sub: Subscriber, presses: Int, devices: Int) throws -> (latencies: [Double], lost: Int, bytesPerPress: Double, cpuMsPerPress: Double) {
        var latencies = [Double](), lost = 0
        let wb0 = ProcStats.writeBytes(d.pid), cpu0 = ProcStats.cpuTicks(d.pid)
        for n in 0..<presses {
            guard let ms = try press(d, sub: sub, device: n % devices) else { lost += 1; continue }
            latencies.append(ms)
        }
        let cpu1 = ProcStats.cpuTicks(d.pid)
        // Let the PUBACK deletes that belong to these presses land before counting bytes.
        _ = try d.waitUntil(timeout: 10) { $0["outbox"]?["count"]?.intValue == 0 }
        usleep(500_000)
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (latencies, lost, Double(ProcStats.writeBytes(d.pid) - wb0) / Double(max(1, presses)),
                Double(cpu1 - cpu0) / hz * 1000 / Double(max(1, presses)))
    }

    /// Presses each after half a second of quiet, alternately as they are and after the daemon
    /// dropped its code mappings (a reload runs what the hourly retention pass runs,
    /// `CodePages.release`), so that press maps the code it runs back in: (quiet, dropped) latencies.
    static func pressAfterQuiet(_ d: BenchDaemon, sub: Subscriber, pairs: Int, devices: Int) throws -> (quiet: [Double], dropped: [Double], lost: Int) {
        var quiet = [Double](), dropped = [Double](), lost = 0
        for n in 0..<(2 * pairs) {
            let drop = n % 2 == 1
            if drop { _ = try d.daemon.control(["cmd": "reload"]) }
            usleep(500_000)
            guard let ms = try press(d, sub: sub, device: n % devices) else { lost += 1; continue }
            if drop { dropped.append(ms) } else { quiet.append(ms) }
        }
        return (quiet, dropped, lost)
    }

    /// `count` frames from 10 neighbours' addresses that are not enrolled.
    static func unknownFrames(_ d: BenchDaemon, count: Int) throws -> Double {
        let frames0 = try d.counter("frames")
        let wb0 = ProcStats.writeBytes(d.pid)
        for n in 0..<count {
            try d.pty.write(EV1527Decoder.encode(address: String(0xF0000 + n % 10, radix: 16, uppercase: true), key: 1)!)
            if n % 50 == 49 { usleep(1_000) }
        }
        _ = try d.waitUntil(timeout: 30) { Int($0["counters"]?["frames"]?.intValue ?? 0) >= frames0 + count }
        _ = try d.waitUntil(timeout: 10) { $0["outbox"]?["count"]?.intValue == 0 }
        usleep(500_000)
        return Double(ProcStats.writeBytes(d.pid) - wb0) / Double(max(1, count))
    }

    /// `count` distinct devices' presses written at once: distinct alerts paged per second, and how many never paged.
    static func burst(_ d: BenchDaemon, sub: Subscriber, count: Int) throws -> (perSecond: Double, lost: Int, seconds: Double) {
        let before = sub.count
        var bytes = [UInt8]()
        for i in 0..<count { bytes += frame(i) }
        let t0 = monotonicNanos()
        try d.pty.write(bytes)
        var paged = Set<String>(), last = t0, scanned = before
        let deadline = t0 + 60_000_000_000
        while paged.count < count && monotonicNanos() < deadline {
            let all = sub.all
            for m in all[scanned...] { if let dev = m.json?["device"]?.stringValue, paged.insert(dev).inserted { last = m.receivedNanos } }
            scanned = all.count
            usleep(2_000)
        }
        let seconds = Double(last - t0) / 1e9
        return (Double(paged.count) / max(seconds, 1e-9), count - paged.count, seconds)
    }

    /// One frame written `count` times as fast as the pty takes it: repeats folded per second.
    static func repeats(_ d: BenchDaemon, count: Int) throws -> (perSecond: Double, folded: Int) {
        let r0 = try d.counter("repeat_frames")
        let f = frame(0, key: 2)
        let chunk = Array([[UInt8]](repeating: f, count: 500).joined())
        let t0 = monotonicNanos()
        var written = 0
        while written < count {
            let n = min(500, count - written)
            try d.pty.write(n == 500 ? chunk : Array(chunk.prefix(n * f.count)))
            written += n
        }
        var folded = 0
        let done = try d.waitUntil(timeout: 60) { s in
            folded = Int(s["counters"]?["repeat_frames"]?.intValue ?? 0) - r0
            return folded >= count - 1
        }
        let seconds = Double((done ?? monotonicNanos()) - t0) / 1e9
        return (Double(folded) / seconds, folded)
    }
}
