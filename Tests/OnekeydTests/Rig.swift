import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness

/// A broker, a pty receiver, the real daemon and a subscriber on everything under the prefix.
final class Rig {
    let broker: Broker
    let pty: PseudoTerminal
    /// The port path in the config: a symlink to the pty, so a test can "unplug" and "replug".
    let portLink: String
    let daemon: DaemonProcess
    var sub: Subscriber!

    init(policy: String? = nil, repeatWindowMs: Int = 3000, pressMergeSeconds: Int = 300,
         devices: [(id: String, address: String)] = [("btn-chen-401", "A1B2C"), ("btn-wang-502", "D4E5F")],
         brokerConfig: String = "", persistentBroker: Bool = false, extra: String = "", start: Bool = true) throws {
        broker = try Broker(extraConfig: brokerConfig, persistent: persistentBroker)
        pty = try PseudoTerminal()
        let dir = try TempDirectory.make("rig")
        portLink = dir + "/ttyRECEIVER"
        try FileManager.default.createSymbolicLink(atPath: portLink, withDestinationPath: pty.path)
        let port = broker.port, link = portLink
        daemon = try DaemonProcess { state, socket in
            SampleConfig.text(brokerPort: port, portPath: link, stateDir: state, socket: socket,
                              repeatWindowMs: repeatWindowMs, pressMergeSeconds: pressMergeSeconds, devices: devices,
                              policy: policy, extra: extra)
        }
        sub = try Subscriber(port: broker.port, topics: ["onekey/v1/#"], clientID: "rig-sub-\(broker.port)", persistent: persistentBroker)
        if start { try daemon.start() }
    }

    static func frame(_ address: String, _ key: UInt8 = 8) -> [UInt8] { EV1527Decoder.encode(address: address, key: key)! }

    /// Writes a press as a receiver module would: the frame repeated a few times, tens of ms apart.
    func press(_ address: String, key: UInt8 = 8, repeats: Int = 1) throws {
        for i in 0..<repeats {
            if i > 0 { usleep(30_000) }
            try pty.write(Self.frame(address, key))
        }
    }

    /// Waits until the daemon's outbox is empty and it is connected.
    func waitDelivered(timeout: Double) throws -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            let s = try daemon.control(["cmd": "status"])
            if s["outbox"]?["count"]?.intValue == 0 && s["mqtt"]?["connected"]?.boolValue == true { return true }
            usleep(50_000)
        }
        return false
    }

    static func addresses(_ n: Int) -> [(id: String, address: String)] {
        (0..<n).map { i in
            let hex = String(0x10000 + i, radix: 16, uppercase: true)
            return ("btn-\(i)", hex)
        }
    }

    var pages: [Subscriber.Message] { sub.all.filter { $0.topic.hasSuffix("/pages") } }
    /// Alert states (non-empty messages on alerts/ID).
    var alertStates: [JSON] { sub.all.filter { $0.topic.contains("/alerts/") && !$0.payload.isEmpty }.compactMap(\.json) }
    var events: [JSON] { sub.all.filter { $0.topic.hasSuffix("/events") }.compactMap(\.json) }

    func ctl(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try runCommand(Binaries.path("onekeyctl"), ["--socket", daemon.socketPath] + args)
    }

    deinit {
        daemon.stop()
        sub?.close()
        broker.stop()
    }
}
