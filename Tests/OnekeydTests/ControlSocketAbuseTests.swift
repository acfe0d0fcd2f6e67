import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import OnekeyLinux
import Synchronization
import Testing

/// The control socket attacked as an outside probe would (CONTRACT §8, issue 10), against the
/// real daemon, a real broker and a pty receiver. Each abuse also prints the daemon's log
/// volume, in lines per minute.
@Suite(.serialized) struct ControlSocketAbuseTests {
    static func descriptors(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    static func rssKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    static func logLines(_ d: DaemonProcess) -> Int { d.log.split(separator: "\n").count }

    /// A non-blocking connection to the control socket, or nil (backlog full, descriptors out).
    static func connect(_ path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in path.utf8.enumerated() { p[i] = b } }
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 { close(fd); return nil }
        return fd
    }

    static func send(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Lets the test process hold thousands of descriptors.
    static func raiseOwnDescriptorLimit() {
        var r = rlimit()
        getrlimit(RLIMIT_NOFILE_INT, &r)
        r.rlim_cur = r.rlim_max
        setrlimit(RLIMIT_NOFILE_INT, &r)
    }
    static let RLIMIT_NOFILE_INT = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

    static func report(_ what: String, lines: Int, seconds: Double) {
        let perMinute = Double(lines) / max(seconds, 1) * 60
        print("log volume under \(what): \(lines) line(s) in \(String(format: "%.1f", seconds)) s → \(String(format: "%.0f", perMinute)) lines/min")
    }

    /// Presses a button and returns how long its first page took (nil: none within `timeout`).
    static func pageLatency(_ rig: Rig, address: String, timeout: Double = 5) throws -> Double? {
        let mark = rig.sub.count
        let t0 = Date()
        try rig.press(address)
        guard rig.sub.next(after: mark, timeout: timeout, where: { $0.topic.hasSuffix("/pages") }) != nil else { return nil }
        return Date().timeIntervalSince(t0)
    }

    @Test func twoThousandClientsThatSendHalfALineAndCloseLeakNothing() throws {
        let rig = try Rig()
        #expect(try rig.waitDelivered(timeout: 10))
        let pid = rig.daemon.pid
        let baseline = Self.descriptors(pid)
        let lines0 = Self.logLines(rig.daemon)
        let t0 = Date()
        var connected = 0
        for _ in 0..<2000 {
            guard let fd = Self.connect(rig.daemon.socketPath) else { usleep(1000); continue }
            connected += 1
            Self.send(fd, #"{"cmd":"status"}"#)
            close(fd)
        }
        #expect(connected > 1500, "most clients got through (\(connected))")
        // Every one of them is closed at once: the count returns to its baseline.
        var now = Self.descriptors(pid)
        let deadline = Date(timeIntervalSinceNow: 5)
        while now > baseline && Date() < deadline { usleep(20_000); now = Self.descriptors(pid) }
        #expect(now <= baseline, "descriptors: \(baseline) before, \(now) after")
        let latency = try Self.pageLatency(rig, address: "A1B2C")
        #expect(latency != nil && latency! < 1, "page after the abuse took \(latency ?? -1) s")
        Self.report("2,000 half-line clients", lines: Self.logLines(rig.daemon) - lines0, seconds: Date().timeIntervalSince(t0))
        #expect(try rig.daemon.control(["cmd": "status"])["ok"]?.boolValue == true)
    }

    @Test func outOfDescriptorsItBacksOffRecoversAndReconnectsToTheBroker() throws {
        Self.raiseOwnDescriptorLimit()
        let rig = try Rig(start: false)
        rig.daemon.environment = ["ONEKEYD_CONTROL_MAX_CLIENTS": "5000"]  // let the clients, not the cap, exhaust descriptors
        try rig.daemon.start()
        let pid = rig.daemon.pid
        let r = try runCommand("/usr/bin/prlimit", ["--pid", String(pid), "--nofile=256:256"])
        #expect(r.status == 0, "prlimit: \(r.stderr)")
        #expect(try rig.waitDelivered(timeout: 10))
        let lines0 = Self.logLines(rig.daemon)
        let t0 = Date()
        var held: [Int32] = []
        for _ in 0..<600 { if let fd = Self.connect(rig.daemon.socketPath) { held.append(fd) } }
        sleep(3)  // the daemon sits at its limit with the backlog full: it must not spin
        #expect(Self.descriptors(pid) <= 256)
        let cpu = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8).split(separator: " ")
        let ticks = (Int(cpu[13]) ?? 0) + (Int(cpu[14]) ?? 0)
        sleep(2)
        let cpu2 = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8).split(separator: " ")
        let spent = (Int(cpu2[13]) ?? 0) + (Int(cpu2[14]) ?? 0) - ticks
        #expect(spent < 50, "the daemon used \(spent) ticks of CPU in 2 s while out of descriptors")
        // A press still pages while the control socket is swamped.
        let during = try Self.pageLatency(rig, address: "A1B2C")
        #expect(during != nil && during! < 1, "page while out of descriptors took \(during ?? -1) s")
        #expect(rig.daemon.log.contains("not accepting for"), "the daemon ran out of descriptors and paused accepting")
        for fd in held { close(fd) }
        Self.report("descriptor exhaustion (600 held clients, limit 256)", lines: Self.logLines(rig.daemon) - lines0, seconds: Date().timeIntervalSince(t0))
        // Recovered: it answers, and after a broker restart its link comes back.
        try rig.daemon.waitForControl(timeout: 10)
        rig.broker.stop()
        try rig.broker.start()
        var connected = false
        let deadline = Date(timeIntervalSinceNow: 20)
        while !connected && Date() < deadline {
            usleep(100_000)
            connected = (try? rig.daemon.control(["cmd": "status"]))?["mqtt"]?["connected"]?.boolValue == true
        }
        #expect(connected, "the broker link reconnected:\n\(rig.daemon.log.suffix(2000))")
        #expect(try rig.daemon.control(["cmd": "test-alert", "device": "btn-wang-502"])["ok"]?.boolValue == true)
        #expect(try rig.waitDelivered(timeout: 10))
    }

    @Test func aHugeLineIsRefusedWithoutGrowingTheDaemon() throws {
        let rig = try Rig()
        let pid = rig.daemon.pid
        let rss0 = Self.rssKiB(pid)
        let lines0 = Self.logLines(rig.daemon)
        let t0 = Date()
        for _ in 0..<20 {
            guard let fd = Self.connect(rig.daemon.socketPath) else { continue }
            var flags = fcntl(fd, F_GETFL); flags &= ~O_NONBLOCK; _ = fcntl(fd, F_SETFL, flags)
            let junk = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
            _ = junk.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            var buf = [UInt8](repeating: 0, count: 4096)
            var answer = [UInt8]()
            while true { let n = read(fd, &buf, buf.count); if n <= 0 { break }; answer += buf[0..<n] }
            close(fd)
            let json = try? JSON.parse(Array(answer.prefix { $0 != 10 }))
            #expect(json?["code"]?.stringValue == "usage", "answer: \(String(decoding: answer.prefix(200), as: UTF8.self))")
        }
        let grown = Self.rssKiB(pid) - rss0
        print("RSS after 20 × 1 MiB lines: +\(grown) KiB")
        #expect(grown < 16 * 1024)
        Self.report("20 huge lines", lines: Self.logLines(rig.daemon) - lines0, seconds: Date().timeIntervalSince(t0))
        #expect(try Self.pageLatency(rig, address: "A1B2C") ?? 9 < 1)
    }

    @Test func thousandsOfIdleConnectionsDoNotLockOutOperatorsOrPresses() throws {
        Self.raiseOwnDescriptorLimit()
        let rig = try Rig()
        let pid = rig.daemon.pid
        let baseline = Self.descriptors(pid)
        let lines0 = Self.logLines(rig.daemon)
        let t0 = Date()
        var held: [Int32] = []
        for _ in 0..<3000 {
            if let fd = Self.connect(rig.daemon.socketPath) { held.append(fd) } else { usleep(500) }
        }
        usleep(500_000)
        let fds = Self.descriptors(pid)
        #expect(fds <= baseline + 128 + 8, "descriptors: \(baseline) → \(fds) with \(held.count) idle clients")
        // The operator still gets an answer (an idle client makes room), and a press pages.
        let s = try rig.ctl(["status"])
        #expect(s.status == 0, "onekeyctl status: \(s.stderr)")
        let latency = try Self.pageLatency(rig, address: "A1B2C")
        #expect(latency != nil && latency! < 1, "page with 3,000 idle clients took \(latency ?? -1) s")
        for fd in held { close(fd) }
        Self.report("3,000 idle connections", lines: Self.logLines(rig.daemon) - lines0, seconds: Date().timeIntervalSince(t0))
        var after = Self.descriptors(pid)
        let deadline = Date(timeIntervalSinceNow: 5)
        while after > baseline && Date() < deadline { usleep(20_000); after = Self.descriptors(pid) }
        #expect(after <= baseline)
    }

    @Test func wrongTypedAndUnknownFieldsAreUsageErrors() throws {
        let rig = try Rig()
        for line in [#"{"cmd":"alerts","all":1}"#, #"{"cmd":"roster-gaps","days":"x"}"#, #"{"cmd":"oncall","at":12}"#,
                     #"{"cmd":"status","verbose":true}"#, #"{"cmd":"ack","id":7,"member":"m-135"}"#, #"{"cmd":"devices","cmd":"status"}"#] {
            let r = try rig.daemon.control(line: line)
            #expect(r["ok"]?.boolValue == false && r["code"]?.stringValue == "usage", "\(line) → \(r.text)")
        }
        #expect(try rig.daemon.control(line: #"{"cmd":"alerts","all":true}"#)["ok"]?.boolValue == true)
        #expect(try rig.daemon.control(line: #"{"cmd":"roster-gaps","days":1}"#)["ok"]?.boolValue == true)
        #expect(try rig.daemon.control(line: #"{"cmd":"unknown"}"#)["unknown"]?.arrayValue != nil)
        #expect(try rig.daemon.control(line: #"{"cmd":"modem"}"#)["modem"]?["configured"]?.boolValue == false)
    }

    @Test func aSupplementaryGroupMemberMayMutateAndAStrangerIsDenied() throws {
        guard getuid() == 0 else { return }  // needs useradd
        let rig = try Rig()
        let group = String(cString: getgrgid(getgid())!.pointee.gr_name)
        let member = "okd-supp", stranger = "okd-stranger"
        for u in [member, stranger] { _ = try runCommand("/usr/sbin/userdel", [u]) }
        #expect(try runCommand("/usr/sbin/useradd", ["-M", "-N", "-g", "nogroup", "-G", group, member]).status == 0)
        #expect(try runCommand("/usr/sbin/useradd", ["-M", "-N", "-g", "nogroup", stranger]).status == 0)
        defer { for u in [member, stranger] { _ = try? runCommand("/usr/sbin/userdel", [u]) } }
        // Let both reach the socket, so the daemon's own check is what decides.
        var dir = rig.daemon.socketPath
        while dir != "/" && !dir.isEmpty {
            dir = (dir as NSString).deletingLastPathComponent
            chmod(dir, 0o755)
        }
        chmod(rig.daemon.socketPath, 0o666)
        func ctl(as user: String, _ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            try runCommand("/usr/bin/setpriv", ["--reuid=\(user)", "--regid=nogroup", "--init-groups", "--",
                                                Binaries.path("onekeyctl"), "--socket", rig.daemon.socketPath] + args)
        }
        let ok = try ctl(as: member, ["test-alert", "--device", "btn-chen-401"])
        #expect(ok.status == 0, "supplementary member of \(group): \(ok.stderr)")
        let denied = try ctl(as: stranger, ["test-alert", "--device", "btn-chen-401"])
        #expect(denied.status == 77, "stranger: \(denied.status) \(denied.stderr)")
        #expect(try ctl(as: stranger, ["status"]).status == 0, "reading is open to whoever reaches the socket")
    }
}

/// Queries that grow with the configuration run off the loop: a press made while they run pages
/// at once, and big answers arrive whole.
@Suite(.serialized) struct ControlQueriesOffTheAlarmPathTests {
    /// 60 grids with day shifts on three weekdays (so the rest is gaps), 120 members, 5,000 devices.
    static func largeSite() -> String {
        var t = ""
        for g in 0..<60 {
            t += "[[grid]]\nid = \"g-\(g)\"\nname = \"网格\(g)\"\npolicy = \"default\"\n\n"
            for m in 0..<2 {
                t += "[[member]]\nid = \"m-\(g)-\(m)\"\nname = \"成员\(g)-\(m)\"\n\n"
                t += "[[shift]]\ngrid = \"g-\(g)\"\nmember = \"m-\(g)-\(m)\"\nrole = \"\(m == 0 ? "primary" : "backup")\"\n"
                t += "days = [\"mon\", \"wed\", \"fri\"]\nstart = \"08:00\"\nend = \"\(m == 0 ? "20:00" : "12:00")\"\n\n"
            }
        }
        return t
    }

    @Test func rosterGapsDevicesAndReloadDoNotHoldUpAPress() throws {
        let rig = try Rig(repeatWindowMs: 200, devices: [("btn-chen-401", "A1B2C")] + Rig.addresses(5000), extra: Self.largeSite())
        #expect(try rig.waitDelivered(timeout: 60))
        let socket = rig.daemon.socketPath
        for request in [#"{"cmd":"roster-gaps","days":1}"#, #"{"cmd":"devices"}"#, #"{"cmd":"reload"}"#, #"{"cmd":"oncall"}"#] {
            let answer = Mutex<(bytes: [UInt8], seconds: Double)?>(nil)
            let t0 = Date()
            let query = Thread {
                let r = (try? UnixSocket.exchangeLine(path: socket, Array(request.utf8), timeoutMs: 120_000)) ?? []
                answer.withLock { $0 = (r, Date().timeIntervalSince(t0)) }
            }
            query.start()
            usleep(2_000)
            let latency = try ControlSocketAbuseTests.pageLatency(rig, address: "A1B2C")
            let deadline = Date(timeIntervalSinceNow: 120)
            while answer.withLock({ $0 == nil }) && Date() < deadline { usleep(10_000) }
            let (bytes, seconds) = answer.withLock { $0 } ?? ([], -1)
            print("\(request): answered in \(String(format: "%.3f", seconds)) s (\(bytes.count) bytes); a press meanwhile paged in \(String(format: "%.1f", (latency ?? -1) * 1000)) ms")
            #expect(latency != nil && latency! < 1, "\(request): page took \(latency ?? -1) s")
            let json = try JSON.parse(bytes)
            #expect(json["ok"]?.boolValue == true, "\(request) → \(String(decoding: bytes.prefix(300), as: UTF8.self))")
            if request.contains("devices") { #expect(json["devices"]?.arrayValue?.count == 5001) }
            rig.sub.clear()
            try rig.press("A1B2C", key: 4)  // cancel, so the next press raises a fresh alert
            usleep(200_000)
        }
    }
}

/// The one limiter every repeated log line goes through.
@Suite struct LogLimiterTests {
    @Test func firstLineThenOneSummaryPerInterval() {
        var l = LogLimiter(intervalSeconds: 10)
        let s: UInt64 = 1_000_000_000
        #expect(l.admit("accept", now: 100 * s) == 0)
        for i in 1...1000 { #expect(l.admit("accept", now: 100 * s + UInt64(i) * 1_000_000) == nil) }
        #expect(l.admit("other", now: 101 * s) == 0, "classes are independent")
        #expect(l.overdue(now: 105 * s).isEmpty, "the interval has not ended")
        let due = l.overdue(now: 111 * s)
        #expect(due.count == 1 && due[0].key == "accept" && due[0].suppressed == 1000)
        #expect(l.admit("accept", now: 112 * s) == nil, "the summary opened a new interval")
        #expect(l.admit("accept", now: 122 * s) == 1)
    }
}
