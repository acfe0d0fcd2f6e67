// onekey-bench: frame-to-page latency of the real daemon next to the broker's own floor,
// measured in the same run on the same broker. Not a test: it prints figures.
//
//   swift run -c release onekey-bench [--presses N] [--relaxed]
//
// Floor: a libmosquitto client publishes (QoS 1) and a subscriber receives, one at a time.
// Frame→page: the last byte of an EV1527 frame written to the pty → the page received by a
// subscriber of P/members/M/pages. Every press is a new alert (merge and repeat windows 0),
// so each one pays the full path: decode, dedup, SQLite commit (fsync), publish, broker.
import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import OnekeyLinux

var presses = 1000
var openAlerts = 10_000
var modes: [(String, Bool)] = [("durable (synchronous=FULL)", false), ("relaxed (synchronous=NORMAL)", true)]
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--presses": presses = Int(args.popFirst() ?? "") ?? presses
    case "--durable-only": modes = [modes[0]]
    case "--open-alerts": openAlerts = Int(args.popFirst() ?? "") ?? openAlerts
    default: print("usage: onekey-bench [--presses N] [--durable-only] [--open-alerts N]"); exit(64)
    }
}

func percentiles(_ xs: [Double]) -> String {
    let s = xs.sorted()
    func p(_ q: Double) -> Double { s[min(s.count - 1, Int(Double(s.count - 1) * q))] }
    return String(format: "p50 %7.3f ms   p99 %7.3f ms   max %7.3f ms   (n=%d)", p(0.5), p(0.99), s.last ?? 0, s.count)
}

func rssKiB(_ pid: Int32) -> Int {
    let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    let line = text.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
}

func cpuTicks(_ pid: Int32) -> Int {
    let text = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    guard let close = text.lastIndex(of: ")") else { return -1 }
    let fields = text[text.index(after: close)...].split(separator: " ")
    return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)  // utime + stime
}

do {
    let broker = try Broker()
    print("onekey-bench: \(presses) presses, mosquitto on 127.0.0.1:\(broker.port), \(ProcessInfo.processInfo.activeProcessorCount) cores")

    // The broker's floor.
    let floorSub = try Subscriber(port: broker.port, topics: ["bench/floor"])
    let publisher = try Subscriber(port: broker.port, topics: [])
    var floor = [Double]()
    for i in 0..<presses {
        let before = floorSub.count
        let t0 = monotonicNanos()
        try publisher.publish(topic: "bench/floor", payload: Array("{\"n\":\(i)}".utf8))
        guard let (_, m) = floorSub.next(after: before, timeout: 5, where: { _ in true }) else { throw HarnessError("floor message \(i) lost") }
        floor.append(Double(m.receivedNanos - t0) / 1e6)
    }
    print("broker floor   publish→receive (QoS 1):  \(percentiles(floor))")

    for (label, relaxed) in modes {
        let pty = try PseudoTerminal()
        let daemon = try DaemonProcess { state, socket in
            SampleConfig.text(brokerPort: broker.port, portPath: pty.path, stateDir: state, socket: socket,
                              repeatWindowMs: 0, pressMergeSeconds: 0)
        }
        if relaxed { daemon.environment["ONEKEYD_BENCH_RELAXED_DURABILITY"] = "1" }
        let sub = try Subscriber(port: broker.port, topics: ["onekey/v1/members/m-135/pages"])
        try daemon.start()
        usleep(300_000)
        let frame = EV1527Decoder.encode(address: "A1B2C", key: 8)!
        var latencies = [Double]()
        var lost = 0
        for _ in 0..<presses {
            let before = sub.count
            // Taken just before the write: the write itself takes microseconds and the daemon can
            // answer before this thread is scheduled again.
            let t0 = monotonicNanos()
            try pty.write(frame)
            guard let (_, m) = sub.next(after: before, timeout: 5, where: { _ in true }) else { lost += 1; continue }
            latencies.append(Double(m.receivedNanos - t0) / 1e6)
        }
        let rss = rssKiB(daemon.pid)
        // Idle CPU: ticks used over 5 s with nothing happening.
        let ticks0 = cpuTicks(daemon.pid)
        sleep(5)
        let ticks1 = cpuTicks(daemon.pid)
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        let status = try daemon.control(["cmd": "status"])
        print("onekeyd \(label)")
        print("  frame→page (last byte → page received): \(percentiles(latencies))")
        print(String(format: "  overhead over the broker floor at p50:   %.3f ms", latencies.sorted()[latencies.count / 2] - floor.sorted()[floor.count / 2]))
        print("  pages lost: \(lost); outbox after run: \(status["outbox"]?["count"]?.intValue ?? -1)")
        print(String(format: "  memory (RSS) after %d alerts: %.1f MiB;  idle CPU over 5 s: %.2f %%", presses, Double(rss) / 1024, Double(ticks1 - ticks0) / hz / 5 * 100))
        daemon.stop()
        sub.close()
    }
    // Timer lateness with 10,000 open alerts: every device pressed once, each alert's step 1
    // (the backup) due 20 s after its press; the daemon records how late each timer wake-up was.
    do {
        let n = openAlerts
        let pty = try PseudoTerminal()
        let devices = (0..<n).map { i -> (id: String, address: String) in ("btn-\(i)", String(0x10000 + i, radix: 16, uppercase: true)) }
        let daemon = try DaemonProcess { state, socket in
            SampleConfig.text(brokerPort: broker.port, portPath: pty.path, stateDir: state, socket: socket, devices: devices, policy: SampleConfig.ladder([(0, "grid:primary"), (20, "grid:backup")]))
        }
        try daemon.start()
        let started = Date()
        for d in devices {
            try pty.write(EV1527Decoder.encode(address: d.address, key: 8)!)
            usleep(500)
        }
        var open = 0
        while Date().timeIntervalSince(started) < 120 {
            open = Int(try daemon.control(["cmd": "status"])["open_alerts"]?.intValue ?? 0)
            if open >= n { break }
            usleep(200_000)
        }
        let pressing = Date().timeIntervalSince(started)
        // Wait for every step 1 to fire.
        var status = try daemon.control(["cmd": "status"])
        while Date().timeIntervalSince(started) < pressing + 60 {
            status = try daemon.control(["cmd": "status"])
            if status["next_escalation"]?.isNull == true { break }
            usleep(500_000)
        }
        let l = status["timer_lateness_ms"]
        func ms(_ j: JSON?) -> String { j.map { if case .double(let d) = $0 { return String(format: "%.3f", d) }; return $0.text } ?? "-" }
        print("escalation timer with \(open) open alerts (\(String(format: "%.1f", pressing)) s to press them all):")
        print("  wake-up lateness after the deadline: p50 \(ms(l?["p50"])) ms   p99 \(ms(l?["p99"])) ms   max \(ms(l?["max"])) ms   (n=\(l?["count"]?.intValue ?? 0) wake-ups)")
        print("  backup pages sent: \((status["counters"]?["pages"]?.intValue ?? 0) - Int64(2 * n)) of \(n);  stale firings ignored: \(status["stale_firings_ignored"]?.intValue ?? 0)")
        print(String(format: "  memory (RSS) with %d open alerts: %.1f MiB", open, Double(rssKiB(daemon.pid)) / 1024))
        daemon.stop()
    }
    broker.stop()
} catch {
    print("onekey-bench: \(error)")
    exit(1)
}
