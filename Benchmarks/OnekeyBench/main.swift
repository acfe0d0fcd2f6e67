// onekey-bench: the real daemon's figures next to the floors of this machine, in one run.
//
//   swift build -c release && .build/release/onekey-bench [--quick] [--presses N] [--burst M]
//       [--repeats K] [--unknown U] [--open-alerts N] [--idle-s S] [--quiet-pairs N] [--small-devices N] [--district-devices N]
//
// Floors: the broker's QoS 1 publish→receive, write + fdatasync of one page on the state
// directory's filesystem (back to back, and each after 0.2 ms asleep as a press finds the
// machine: the press figures are taken against the second), and a frame's hop through a pty
// to a reader asleep in poll(2).
// Frame→page: the last byte of an EV1527 frame written to the pty → the page received by an
// MQTT subscriber; every press is a new alert (merge and repeat windows 0),
// so each one pays the full durable path. Configurations are generated (DistrictConfig).
import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import OnekeyLinux

var presses = 1000, burst = 2000, repeatFrames = 20_000, unknown = 2000, openAlerts = 10_000
var idleSeconds = 60.0, smallDevices = 1000, districtDevices = 20_000, timerStepS = 20, quietPairs = 20
var args = CommandLine.arguments.dropFirst()
func number(_ flag: String, _ args: inout ArraySlice<String>) -> Int {
    guard let v = args.popFirst().flatMap({ Int($0) }), v > 0 else { print("onekey-bench: \(flag) needs a positive number"); exit(64) }
    return v
}
while let a = args.popFirst() {
    switch a {
    case "--quick":
        presses = 200; burst = 500; repeatFrames = 5000; unknown = 500; openAlerts = 1000; idleSeconds = 5; timerStepS = 5; quietPairs = 5
    case "--presses": presses = number(a, &args)
    case "--burst": burst = number(a, &args)
    case "--repeats": repeatFrames = number(a, &args)
    case "--unknown": unknown = number(a, &args)
    case "--open-alerts": openAlerts = number(a, &args)
    case "--idle-s": idleSeconds = Double(number(a, &args))
    case "--quiet-pairs": quietPairs = number(a, &args)
    case "--small-devices": smallDevices = number(a, &args)
    case "--district-devices": districtDevices = number(a, &args)
    default:
        print("usage: onekey-bench [--quick] [--presses N] [--burst M] [--repeats K] [--unknown U] [--open-alerts N] [--idle-s S] [--quiet-pairs N] [--small-devices N] [--district-devices N]")
        exit(64)
    }
}

func line(_ label: String, _ value: String) { print("  " + label.padding(toLength: 44, withPad: " ", startingAt: 0) + value) }

do {
    let broker = try Broker()
    print("onekey-bench: mosquitto on 127.0.0.1:\(broker.port), \(ProcessInfo.processInfo.activeProcessorCount) cores, load \(String((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.prefix(14) ?? ""))")

    print("floors")
    let brokerFloor = try Floors.broker(broker, samples: presses)
    line("broker publish→receive (QoS 1)", percentiles(brokerFloor))
    let backToBack = try Floors.fdatasync(directory: try TempDirectory.make("fsync"), samples: min(presses, 500))
    line("write 4 KiB + fdatasync (state dir's fs)", percentiles(backToBack))
    // The floor the press figures are taken against: a sync issued from the state a press finds
    // the machine in (the daemon asleep until the frame), as the pty floor is measured.
    let syncFloor = try Floors.fdatasync(directory: try TempDirectory.make("fsync"), samples: min(presses, 500), idleMicroseconds: 200)
    line("  … each after 0.2 ms asleep (as a press)", percentiles(syncFloor))
    let ptyFloor = try Floors.pty(samples: presses)
    line("pty write → read (frame's input hop)", percentiles(ptyFloor))

    // A small site: start, idle, then presses one at a time, then neighbours' unknown frames.
    print("small site: \(smallDevices) devices (generated)")
    let small = try BenchDaemon(broker: broker, devices: smallDevices, grids: max(1, smallDevices / 40), members: max(1, smallDevices / 40) * 10,
                                repeatWindowMs: 0, pressMergeSeconds: 0)
    line("start → READY=1", String(format: "%.1f ms", small.readyMs))
    line("RSS after start", mib(small.startRSS))
    usleep(1_000_000)
    let idle = Scenarios.idle(small, seconds: idleSeconds)
    line("idle wake-ups (all threads' ctx switches)", String(format: "%.0f /min (over %.0f s)", idle.wakeupsPerMinute, idleSeconds))
    line("idle disk writes", String(format: "%.0f bytes/hour (extrapolated); CPU %.2f %%", idle.bytesPerHour, idle.cpuPercent))
    let sub = try Subscriber(port: broker.port, topics: ["onekey/v1/members/+/pages"])
    let p = try Scenarios.pressLatency(small, sub: sub, presses: presses, devices: smallDevices)
    line("frame→page, durable", percentiles(p.latencies))
    line("  over the floors at p50", String(format: "%.3f ms (p50 %.3f − broker %.3f − fdatasync %.3f)",
                                             median(p.latencies) - median(brokerFloor) - median(syncFloor), median(p.latencies),
                                             median(brokerFloor), median(syncFloor)))
    line("  … and over the pty hop too", String(format: "%.3f ms (− pty %.3f)",
                                              median(p.latencies) - median(brokerFloor) - median(syncFloor) - median(ptyFloor), median(ptyFloor)))
    line("  daemon CPU per press", String(format: "%.3f ms (utime + stime, all threads)", p.cpuMsPerPress))
    line("  pages lost", "\(p.lost) of \(presses)")
    line("disk writes per press", String(format: "%.0f bytes (write_bytes delta / presses)", p.bytesPerPress))
    // The field's usual press comes after a quiet spell, when the disk, the broker and the
    // daemon's caches have all gone cold: measured against floors taken the same way.
    let q = try Scenarios.pressAfterQuiet(small, sub: sub, pairs: quietPairs, devices: smallDevices)
    let quietBroker = try Floors.broker(broker, samples: quietPairs, idleMicroseconds: 500_000)
    let quietSync = try Floors.fdatasync(directory: try TempDirectory.make("fsync"), samples: quietPairs, idleMicroseconds: 500_000)
    line("a press after 0.5 s of quiet", percentiles(q.quiet))
    line("  floors after 0.5 s of quiet", String(format: "broker p50 %.3f ms, fdatasync p50 %.3f ms", median(quietBroker), median(quietSync)))
    line("  over those floors at p50", String(format: "%.3f ms", median(q.quiet) - median(quietBroker) - median(quietSync)))
    line("  … after the code pages were dropped", percentiles(q.dropped) + " (hourly; here by reload)")
    line("  pages lost", "\(q.lost) of \(2 * quietPairs) (both kinds)")
    let u = try Scenarios.unknownFrames(small, count: unknown)
    line("disk writes per unknown-address frame", String(format: "%.0f bytes (%d frames, 10 addresses)", u, unknown))
    line("RSS after \(presses) alerts", mib(ProcStats.rssKiB(small.pid)))
    small.stop()
    sub.close()

    // A burst: many distinct presses written in one go.
    let burstDaemon = try BenchDaemon(broker: broker, devices: max(burst, 1), grids: max(1, burst / 40), members: max(1, burst / 40) * 10,
                                      repeatWindowMs: 3000, pressMergeSeconds: 300)
    let burstSub = try Subscriber(port: broker.port, topics: ["onekey/v1/members/+/pages"])
    let b = try Scenarios.burst(burstDaemon, sub: burstSub, count: burst)
    print("burst: \(burst) distinct presses written at once")
    line("distinct new alerts paged", String(format: "%.0f /s (last page after %.3f s); lost %d", b.perSecond, b.seconds, b.lost))
    burstDaemon.stop()
    burstSub.close()

    // Repeat frames folded.
    let repeatDaemon = try BenchDaemon(broker: broker, devices: 1, grids: 1, members: 1, repeatWindowMs: 600_000, pressMergeSeconds: 300)
    let r = try Scenarios.repeats(repeatDaemon, count: repeatFrames)
    print("repeats: one frame written \(repeatFrames) times")
    line("repeat frames folded", String(format: "%.0f /s (%d folded)", r.perSecond, r.folded))
    repeatDaemon.stop()

    // Escalation timer lateness with many open alerts: each alert's step 1 due `timerStepS` after its press.
    // A section that fails (a loaded machine can time a control request out) is reported, and the run goes on.
    do {
        let n = openAlerts
        let pty = try PseudoTerminal()
        let devices = (0..<n).map { i -> (id: String, address: String) in (DistrictConfig.deviceID(i), DistrictConfig.address(i)) }
        let daemon = try DaemonProcess { state, socket in
            SampleConfig.text(brokerPort: broker.port, portPath: pty.path, stateDir: state, socket: socket, devices: devices,
                              policy: SampleConfig.ladder([(0, "grid:primary"), (timerStepS, "grid:backup")]))
        }
        try daemon.start()
        let started = Date()
        for i in 0..<n {
            try pty.write(Scenarios.frame(i))
            usleep(500)
        }
        var open = 0
        while Date().timeIntervalSince(started) < 120 {
            open = Int(try daemon.control(["cmd": "status"])["open_alerts"]?.intValue ?? 0)
            if open >= n { break }
            usleep(200_000)
        }
        let pressing = Date().timeIntervalSince(started)
        var status = try daemon.control(["cmd": "status"])
        while Date().timeIntervalSince(started) < pressing + Double(timerStepS) + 60 {
            status = try daemon.control(["cmd": "status"])
            if status["next_escalation"]?.isNull == true { break }
            usleep(200_000)
        }
        let l = status["timer_lateness_ms"]
        func ms(_ j: JSON?) -> String { j.map { if case .double(let d) = $0 { return String(format: "%.3f", d) }; return $0.text } ?? "-" }
        print("escalation timer: \(open) open alerts (\(String(format: "%.1f", pressing)) s to press them all), step 1 at \(timerStepS) s")
        line("wake-up lateness after the deadline", "p50 \(ms(l?["p50"])) ms   p99 \(ms(l?["p99"])) ms   max \(ms(l?["max"])) ms   (n=\(l?["count"]?.intValue ?? 0))")
        line("backup pages sent", "\((status["counters"]?["pages"]?.intValue ?? 0) - Int64(2 * n)) of \(n); stale firings ignored: \(status["stale_firings_ignored"]?.intValue ?? 0)")
        line("RSS with \(open) open alerts", mib(ProcStats.rssKiB(daemon.pid)))
        daemon.stop()
    } catch {
        print("escalation timer: not measured: \(error)")
    }

    // A district: start, memory, then a busy hour's presses (3,600, each a new alert on its own
    // device, left open) written one after the other, and the memory after them.
    let district = try BenchDaemon(broker: broker, devices: districtDevices, grids: 500, members: 5000, repeatWindowMs: 3000, pressMergeSeconds: 300)
    print("district: \(districtDevices) devices, 500 grids, 5,000 members (generated)")
    line("start → READY=1", String(format: "%.1f ms", district.readyMs))
    line("RSS after start", mib(district.startRSS))
    let hourPresses = min(3600, districtDevices)
    let districtSub = try Subscriber(port: broker.port, topics: ["onekey/v1/members/+/pages"])
    let dp = try Scenarios.pressLatency(district, sub: districtSub, presses: hourPresses, devices: districtDevices)
    line("frame→page over \(hourPresses) presses", percentiles(dp.latencies) + "; lost \(dp.lost)")
    line("RSS after them (\(hourPresses) open alerts)", mib(ProcStats.rssKiB(district.pid)))
    districtSub.close()
    district.stop()
    broker.stop()
} catch {
    print("onekey-bench: \(error)")
    exit(1)
}
