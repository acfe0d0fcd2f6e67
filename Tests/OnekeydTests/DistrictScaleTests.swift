import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import OnekeyLinux
import Testing

/// A district (20,000 devices, 500 grids, 5,000 members) against the real daemon, mosquitto
/// and a pty: configuration checks stay fast, and no control command delays a page.
@Suite(.serialized) struct DistrictScaleTests {
    static let devices = 20_000, grids = 500, members = 5_000

    static func seconds(since t0: UInt64) -> Double { Double(monotonicNanos() - t0) / 1e9 }

    @Test func checkConfigOfADistrictIsFastAndWarnsAboutGaps() throws {
        var o = DistrictConfig.Options()
        o.gapGrids = 30
        let dir = try TempDirectory.make("district")
        let path = dir + "/onekeyd.toml"
        try DistrictConfig.generate(devices: Self.devices, grids: Self.grids, members: Self.members, options: o)
            .write(toFile: path, atomically: true, encoding: .utf8)
        // bash's `time` reports the check's own CPU seconds on stderr's last line: on a machine
        // loaded by other builds the wall time says more about them than about the check.
        let t0 = monotonicNanos()
        let timed = try runCommand("/bin/bash", ["-c", "TIMEFORMAT='cpu %U %S'; time \"$0\" --check-config --config \"$1\"",
                                                 Binaries.path("onekeyd"), path])
        let elapsed = Self.seconds(since: t0)
        var lines = timed.stderr.split(separator: "\n")
        let cpu = lines.popLast().map { $0.split(separator: " ").dropFirst().compactMap { Double($0) }.reduce(0, +) } ?? -1
        let r = (status: timed.status, stdout: timed.stdout, stderr: lines.joined(separator: "\n"))
        print(String(format: "district --check-config (20,000 devices): %.3f s wall, %.3f s CPU", elapsed, cpu))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("20000 device(s), 500 grid(s), 5000 member(s)"), "\(r.stdout)")
        let warnings = r.stderr.split(separator: "\n")
        // 30 grids have a Sunday night gap: 20 lines, then one line for the other 10.
        #expect(warnings.count == 21, "\(r.stderr)")
        #expect(warnings.first?.hasPrefix("warning: roster gap: grid grid-0 (第1网格) has no primary on shift from Sun ") == true)
        #expect(warnings.last?.contains("10 more grid(s) have gaps, 7200 min uncovered in all") == true, "\(r.stderr)")
        #expect(cpu >= 0 && cpu < 5)
    }

    /// Presses distinct devices every `interval` on the pty while `work` runs, and returns each
    /// press's frame→page latency in ms (nil = no page within 5 s).
    final class PressLoop: @unchecked Sendable {
        let pty: PseudoTerminal
        let sub: Subscriber
        private let lock = NSLock()
        private var stop = false
        private(set) var latencies: [Double?] = []
        private var next: Int

        init(pty: PseudoTerminal, sub: Subscriber, firstDevice: Int) { self.pty = pty; self.sub = sub; next = firstDevice }

        func run(while work: () throws -> Void) rethrows {
            let done = DispatchSemaphore(value: 0)
            Thread { [self] in
                while !lock.withLock({ stop }) {
                    let i = next; next += 1
                    let device = DistrictConfig.deviceID(i)
                    let before = sub.count
                    let t0 = monotonicNanos()
                    try? pty.write(EV1527Decoder.encode(address: DistrictConfig.address(i), key: 8)!)
                    let page = sub.next(after: before, timeout: 5) { $0.json?["device"]?.stringValue == device }
                    lock.withLock { latencies.append(page.map { Double($0.1.receivedNanos - t0) / 1e6 }) }
                    usleep(20_000)
                }
                done.signal()
            }.start()
            defer { lock.withLock { stop = true }; done.wait() }
            usleep(200_000)
            try work()
            usleep(200_000)
        }
    }

    final class District {
        let broker: Broker
        let pty: PseudoTerminal
        let daemon: DaemonProcess
        let sub: Subscriber

        init() throws {
            broker = try Broker()
            pty = try PseudoTerminal()
            var o = DistrictConfig.Options()
            o.brokerPort = broker.port
            o.portPath = pty.path
            let pty = self.pty
            daemon = try DaemonProcess { state, socket in
                o.stateDir = state; o.socket = socket; o.portPath = pty.path
                return DistrictConfig.generate(devices: DistrictScaleTests.devices, grids: DistrictScaleTests.grids,
                                               members: DistrictScaleTests.members, options: o)
            }
            sub = try Subscriber(port: broker.port, topics: ["onekey/v1/members/+/pages"])
            try daemon.start()
        }

        func ctl(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try runCommand(Binaries.path("onekeyctl"), ["--socket", daemon.socketPath] + args, timeout: 120)
        }

        /// Runs `args` while presses are written; prints and checks every press's latency.
        func whilePressing(_ label: String, firstDevice: Int, _ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            let loop = PressLoop(pty: pty, sub: sub, firstDevice: firstDevice)
            var result: (status: Int32, stdout: String, stderr: String) = (-1, "", "")
            var took = 0.0
            try loop.run {
                let t0 = monotonicNanos()
                result = try ctl(args)
                took = DistrictScaleTests.seconds(since: t0)
            }
            let got = loop.latencies.compactMap { $0 }
            print("district \(label): command \(String(format: "%.3f", took)) s; \(loop.latencies.count) presses, frame→page ms: "
                  + got.map { String(format: "%.1f", $0) }.joined(separator: " "))
            #expect(loop.latencies.count >= 2, "\(label): presses were written while the command ran")
            #expect(got.count == loop.latencies.count, "\(label): \(loop.latencies.count - got.count) press(es) got no page within 5 s")
            // The goal is every page within 50 ms (release build, quiet machine: docs/benchmarks.md).
            // Here (debug build, other suites' daemons fsyncing in parallel on 2 cores) only the
            // failure this guards against is asserted: the old runtime held presses 2.7–27 s
            // behind these commands. Median ≤ 250 ms, none above 3 s.
            let sorted = got.sorted()
            let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
            #expect(median <= 250, "\(label): median frame→page \(median) ms (goal 50 ms)")
            #expect(got.allSatisfy { $0 <= 3000 }, "\(label): max frame→page \(got.max() ?? 0) ms")
            return result
        }

        deinit { daemon.stop(); sub.close(); broker.stop() }
    }

    /// Passes on today's runtime only because the gap search is now cheap (0.1 s, was 27 s for one day).
    @Test func rosterGapsDoNotDelayAPage() throws {
        let d = try District()
        let r = try d.whilePressing("roster gaps --days 7", firstDevice: 0, ["--json", "roster", "gaps", "--days", "7"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try JSON.parse(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["gaps"]?.arrayValue?.isEmpty == true)
    }

    @Test
    func devicesListsTheWholeDistrictWithoutDelayingAPage() throws {
        let d = try District()
        let r = try d.whilePressing("--json devices", firstDevice: 1000, ["--json", "devices"])
        #expect(r.status == 0, "\(r.stderr)")
        let list = try JSON.parse(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["devices"]?.arrayValue ?? []
        #expect(list.count == DistrictScaleTests.devices)
        #expect(Set(list.compactMap { $0["id"]?.stringValue }).count == DistrictScaleTests.devices)
    }

    @Test
    func reloadDoesNotDelayAPage() throws {
        let d = try District()
        let r = try d.whilePressing("reload", firstDevice: 2000, ["reload"])
        #expect(r.status == 0, "\(r.stderr)")
    }
}
