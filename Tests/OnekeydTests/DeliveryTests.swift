import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import Testing

/// Nothing is lost: broker outages and SIGKILLs in the middle of a burst.
@Suite(.serialized) struct DeliveryTests {
    /// The harness's own broker must be the one answering on its port: a second broker told to use
    /// a port already taken fails loudly instead of "starting" because the first one answers.
    /// (CI once lost a test to a subscriber that connected to another test's TLS listener.)
    @Test func aBrokerOnATakenPortFailsInsteadOfBorrowingTheOtherOne() throws {
        let first = try Broker()
        defer { first.stop() }
        #expect(throws: (any Error).self) { _ = try Broker(port: first.port) }
        #expect(first.isRunning)
    }

    @Test func pressesDuringABrokerOutageArriveInOrderAfterItReturns() throws {
        let devices = Rig.addresses(5)
        let rig = try Rig(devices: devices, persistentBroker: true)
        try rig.press(devices[0].address)
        #expect(rig.sub.next(after: 0, timeout: 10) { $0.topic.hasSuffix("/pages") } != nil)
        usleep(2_500_000)  // let the broker autosave the subscriber's session

        rig.broker.stop()
        for d in devices.dropFirst() {
            try rig.press(d.address)
            usleep(100_000)
        }
        // The daemon keeps storing while the broker is away (each press is committed durably
        // before the next is read: allow the disk its time).
        var waiting = try rig.daemon.control(["cmd": "outbox"])
        let until = Date(timeIntervalSinceNow: 10)
        while (waiting["count"]?.intValue ?? 0) < 4 * 4 && Date() < until {
            usleep(50_000)
            waiting = try rig.daemon.control(["cmd": "outbox"])
        }
        #expect((waiting["count"]?.intValue ?? 0) >= 4 * 4, "event, alert, device and pages per press are queued: \(waiting.text)")
        #expect(waiting["connected"]?.boolValue == false)
        #expect(try rig.ctl(["status"]).stdout.contains("NOT CONNECTED"))

        try rig.broker.start()
        #expect(try rig.waitDelivered(timeout: 30), "outbox drained after the broker came back")
        rig.sub.wait(timeout: 15) { msgs in Set(msgs.filter { $0.topic.hasSuffix("/pages") }.compactMap { $0.json?["alert"]?.stringValue }).count >= 5 }

        // Every alert arrived; no alert id missing or doubled; pages in press order.
        let pages = rig.pages.compactMap(\.json).filter { $0["member"]?.stringValue == "m-135" }
        var order = [String]()
        for p in pages { if let a = p["alert"]?.stringValue, !order.contains(a) { order.append(a) } }
        #expect(order.count == 5)
        #expect(order == order.sorted(), "pages arrive in the order of the presses (ids sort by time)")
        let devicesInOrder = order.compactMap { id in pages.first { $0["alert"]?.stringValue == id }?["device"]?.stringValue }
        #expect(devicesInOrder == devices.map(\.id))
        let states = rig.alertStates
        for d in devices {
            let ids = Set(states.filter { $0["device"]?.stringValue == d.id }.compactMap { $0["id"]?.stringValue })
            #expect(ids.count == 1, "\(d.id) has one alert id, got \(ids)")
        }
        #expect(rig.daemon.log.contains("lost the broker connection"))
    }

    @Test func sigkillDuringABurstLosesNoPressAndDoublesNoAlert() throws {
        let devices = Rig.addresses(24)
        // Every frame a press (repeat window 0): the repeat window now survives restarts, so with
        // the default 3 s the ~200 ms cycle below would be folded into one press per device.
        let rig = try Rig(repeatWindowMs: 0, pressMergeSeconds: 3600, devices: devices)
        let stop = StopFlag()
        let pty = rig.pty
        let writer = Thread {
            var n = 0
            while !stop.isSet {
                try? pty.write(Rig.frame(devices[n % devices.count].address))
                n += 1
                usleep(UInt32.random(in: 2_000...15_000))
            }
        }
        writer.start()
        var kills = 0
        for _ in 0..<22 {
            usleep(UInt32.random(in: 20_000...250_000))
            rig.daemon.crash()
            kills += 1
            try rig.daemon.start()
        }
        stop.set()
        usleep(100_000)
        #expect(kills >= 20)
        #expect(try rig.waitDelivered(timeout: 30))
        usleep(500_000)

        // What the store says happened…
        let stored = try rig.daemon.control(line: #"{"cmd":"alerts","all":true}"#)["alerts"]?.arrayValue ?? []
        let storedIDs = Set(stored.compactMap { $0["id"]?.stringValue })
        let storedPresses = stored.reduce(0) { $0 + Int($1["press_count"]?.intValue ?? 0) }
        #expect(storedPresses > 50, "the burst was mostly heard (\(storedPresses) presses)")
        // …every stored alert reached the broker, and each device has exactly one alert id:
        // a press is never raised twice under two ids, not even across a crash.
        let states = rig.alertStates
        let brokerIDs = Set(states.compactMap { $0["id"]?.stringValue })
        #expect(brokerIDs == storedIDs)
        for d in devices {
            let ids = Set(states.filter { $0["device"]?.stringValue == d.id }.compactMap { $0["id"]?.stringValue })
            #expect(ids.count <= 1, "\(d.id): \(ids)")
        }
        // Every stored press has its event on the broker (duplicates allowed, keyed by id).
        let eventIDs = Set(rig.events.filter { $0["kind"]?.stringValue == "panic" }.compactMap { $0["id"]?.stringValue })
        #expect(eventIDs.count == storedPresses)
        // And its latest press count was published.
        for a in stored {
            let id = a["id"]?.stringValue ?? ""
            let maxCount = states.filter { $0["id"]?.stringValue == id }.compactMap { $0["press_count"]?.intValue }.max()
            #expect(maxCount == a["press_count"]?.intValue, "alert \(id)")
        }
    }
}

final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
