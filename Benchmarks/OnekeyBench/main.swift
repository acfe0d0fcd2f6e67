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
var modes: [(String, Bool)] = [("durable (synchronous=FULL)", false), ("relaxed (synchronous=NORMAL)", true)]
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--presses": presses = Int(args.popFirst() ?? "") ?? presses
    case "--durable-only": modes = [modes[0]]
    default: print("usage: onekey-bench [--presses N] [--durable-only]"); exit(64)
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
    broker.stop()
} catch {
    print("onekey-bench: \(error)")
    exit(1)
}
