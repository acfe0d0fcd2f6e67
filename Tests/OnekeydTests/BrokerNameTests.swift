import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import Testing

/// A broker given by host name is looked up off the event loop (`BrokerResolver`): libmosquitto's
/// own lookup blocks, and a DNS server that never answers must not hold frames, timers, the
/// control socket or the watchdog. The daemon runs in a private mount namespace whose
/// `/etc/resolv.conf` (and `/etc/hosts`) the test writes.
@Suite(.serialized) struct BrokerNameTests {
    static let name = "broker.onekey-test"

    /// A rig whose daemon connects to `name`, run under `unshare --mount` with the given files.
    static func rig(hosts: String, resolv: String) throws -> Rig {
        let rig = try Rig(start: false)
        let text = try String(contentsOfFile: rig.daemon.configPath, encoding: .utf8)
        try rig.daemon.writeConfig(text.replacingOccurrences(of: "host = \"127.0.0.1\"", with: "host = \"\(name)\""))
        let dir = try TempDirectory.make("names")
        try hosts.write(toFile: dir + "/hosts", atomically: true, encoding: .utf8)
        try resolv.write(toFile: dir + "/resolv.conf", atomically: true, encoding: .utf8)
        rig.daemon.launcher = ["/usr/bin/unshare", "--mount", "/bin/sh", "-c",
                               "mount --bind \(dir)/hosts /etc/hosts && mount --bind \(dir)/resolv.conf /etc/resolv.conf && exec \"$0\" \"$@\""]
        return rig
    }

    @Test(.enabled(if: getuid() == 0, "mounts over /etc/hosts in a private namespace"))
    func aBrokerNamePagesThroughTheAddressItResolvesTo() throws {
        let rig = try Self.rig(hosts: "127.0.0.1 localhost\n127.0.0.1 \(Self.name)\n", resolv: "nameserver 127.0.0.1\n")
        try rig.daemon.start()
        #expect(try rig.waitDelivered(timeout: 10), "connects to the broker by its name")
        try rig.press("A1B2C")
        let isPage: (Subscriber.Message) -> Bool = { $0.topic.hasSuffix("/pages") }
        #expect(rig.sub.wait(timeout: 10) { $0.contains(where: isPage) }.contains(where: isPage), "the press is paged")
    }

    /// A DNS server that takes every query and answers none (a UDP socket nobody reads).
    @Test(.enabled(if: getuid() == 0, "mounts over /etc/resolv.conf and binds port 53"))
    func aDNSServerThatNeverAnswersHoldsNothingUp() throws {
        let dns = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(dns >= 0)
        defer { close(dns) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(53).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.99")
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(dns, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        try #require(bound == 0, "bind 127.0.0.99:53: \(String(cString: strerror(errno)))")

        let rig = try Self.rig(hosts: "127.0.0.1 localhost\n", resolv: "nameserver 127.0.0.99\noptions timeout:3 attempts:1\n")
        try rig.daemon.start()
        // Each lookup waits ~3 s for an answer that never comes, again and again. Meanwhile the
        // control socket answers at once and a press is decided and stored at once.
        var slowest = 0.0
        let until = Date(timeIntervalSinceNow: 7)
        var pressed = false
        while Date() < until {
            let t = Date()
            _ = try rig.daemon.control(["cmd": "status"])
            slowest = max(slowest, Date().timeIntervalSince(t))
            if !pressed && Date() > until.addingTimeInterval(-4) {
                pressed = true
                let p = Date()
                try rig.press("A1B2C")
                var raised = false
                while Date().timeIntervalSince(p) < 1 && !raised {
                    raised = (try rig.daemon.control(["cmd": "status"])["open_alerts"]?.intValue ?? 0) > 0
                    if !raised { usleep(20_000) }
                }
                #expect(raised, "the press is an open alert within 1 s while the lookup hangs")
            }
            usleep(100_000)
        }
        #expect(slowest < 1.0, "the slowest control answer took \(slowest) s")
        var from = sockaddr_in(), len = socklen_t(MemoryLayout<sockaddr_in>.size), buf = [UInt8](repeating: 0, count: 512)
        let got = withUnsafeMutablePointer(to: &from) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(dns, &buf, buf.count, Int32(MSG_DONTWAIT), $0, &len) } }
        #expect(got > 0, "the daemon did ask the DNS server")
        let log = (try? String(contentsOfFile: rig.daemon.logPath, encoding: .utf8)) ?? ""
        #expect(log.contains("looking up \(Self.name)"), "the failed lookup is logged as the reason the broker is unreachable")
    }
}
