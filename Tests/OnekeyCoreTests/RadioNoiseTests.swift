import Testing
@testable import OnekeyCore

/// Neighbours' 433 MHz senders (CONTRACT §5 unknown addresses) and repeats across a restart.
@Suite struct RadioNoiseTests {
    typealias T = AlertDeskTests

    static func noise(_ i: Int, code: String = "8") -> DecodedFrame {
        DecodedFrame(driver: .ev1527, address: String(0xB0000 + i, radix: 16, uppercase: true), code: code, raw: [0xFD, 1, 2, 3, 4, 0xDF])
    }

    @Test func fiveThousandFramesFromFiftyAddressesAreAtMostFiftyEventsPerWindow() throws {
        var desk = AlertDesk(config: try T.config(), at: T.at(0))  // unknown_report_s = 600 (default)
        var clock = T.ManualClock()
        var perWindow = [Int: Int]()
        var reported = [String: Int]()
        var notes = 0, messages = 0
        // 5,000 frames, 50 addresses, one frame every 240 ms: 1,200 s = two report windows.
        for i in 0..<5000 {
            let o = desk.handle(Self.noise(i % 50, code: i % 3 == 0 ? "4" : "8"), at: clock.now)
            #expect(o.alerts.isEmpty && o.pageMessages.isEmpty)
            for e in o.events {
                #expect(e.kind == .unknownDevice && e.device == nil)
                perWindow[Int((clock.mono - 1_000_000_000) / 600_000_000_000), default: 0] += 1
                reported[e.address, default: 0] += e.count ?? 0
            }
            notes += o.notes.count
            messages += o.outbox.count
            clock.advance(ms: 240)
        }
        #expect(perWindow.values.allSatisfy { $0 <= 50 })
        #expect(perWindow.values.reduce(0, +) == 100)  // each address once per window
        #expect(notes == 100 && messages == 100)       // the log and the broker are bounded the same way
        // Counts: each report carries the frames heard since the previous one.
        let table = desk.unknownAddresses
        #expect(table.count == 50 && table.allSatisfy { $0.frames == 100 && $0.codes == ["4", "8"] })
        for u in table { #expect((reported[u.address] ?? 0) <= u.frames && (reported[u.address] ?? 0) >= 50) }
        #expect(table.map(\.lastHeard) == table.map(\.lastHeard).sorted(by: >))
        // The answer of {"cmd":"unknown"}.
        let json = JSON.object(Payloads.unknown(table, evicted: desk.unknownEvicted))
        let first = json["unknown"]?.arrayValue?.first
        #expect(first?["driver"]?.stringValue == "ev1527" && first?["frames"]?.intValue == 100)
        #expect(first?["codes"]?.arrayValue?.count == 2 && first?["first_heard"]?.stringValue != nil)
    }

    @Test func theReportCarriesTheCountInItsJSON() throws {
        var desk = AlertDesk(config: try T.config(), at: T.at(0))
        var clock = T.ManualClock()
        let first = desk.handle(Self.noise(1), at: clock.now)
        #expect(first.events.first?.count == 1)
        for _ in 0..<9 { clock.advance(ms: 1000); #expect(!desk.handle(Self.noise(1), at: clock.now).changesState) }
        clock.advance(ms: 600_000)
        let second = desk.handle(Self.noise(1), at: clock.now)
        let json = try JSON.parse(second.messages[0].payload)
        #expect(json["kind"]?.stringValue == "unknown_device" && json["count"]?.intValue == 10)
    }

    @Test func theTableIsBoundedAndEvictsTheLeastRecentlyHeard() throws {
        var desk = AlertDesk(config: try T.config(), at: T.at(0))
        var clock = T.ManualClock()
        for i in 0..<3000 {
            _ = desk.handle(Self.noise(i), at: clock.now)
            clock.advance(ms: 1)
        }
        #expect(desk.unknownAddresses.count == 1024 && desk.unknownEvicted == 3000 - 1024)
        #expect(desk.unknownAddresses.first?.address == String(0xB0000 + 2999, radix: 16, uppercase: true))
        #expect(desk.unknownAddresses.last?.address == String(0xB0000 + 3000 - 1024, radix: 16, uppercase: true))
    }

    @Test func aFloodOfDistinctAddressesIsBoundedInEventsNotesAndMemory() throws {
        var desk = AlertDesk(config: try T.config(), at: T.at(0))
        var clock = T.ManualClock()
        var events = 0, notes = 0, counted = 0
        let config = try T.config()
        let enrolled = Set(config.devices.map { $0.address.uppercased() })
        // Seeded: a failure reproduces. The system generator once drew an enrolled button's
        // address (2 of 2^20, ~6 % of runs over 30,000 draws) — a real press, counted as an event.
        var rng = SplitMix64(seed: 0x0B5E_55ED_5EED)
        // 30,000 frames from random unenrolled 20-bit addresses, 33 ms apart: 990 s, two windows.
        for _ in 0..<30_000 {
            var address: String
            repeat {
                let hex = String(UInt32.random(in: 0..<0x100000, using: &rng), radix: 16, uppercase: true)
                address = String(repeating: "0", count: 5 - hex.count) + hex
            }
            while enrolled.contains(address)
            let frame = DecodedFrame(driver: .ev1527, address: address, code: "8", raw: [])
            let o = desk.handle(frame, at: clock.now)
            events += o.events.count
            notes += o.notes.count
            counted += o.unknownFramesCounted
            clock.advance(ms: 33)
        }
        #expect(events <= 2 * UnknownAddressTable.maxReportsPerWindow)
        #expect(notes <= events + 2)  // one "throttled" warning per window
        #expect(events + counted == 30_000)
        #expect(desk.unknownAddresses.count == 1024)
        #expect(desk.unknown.queueLength <= 4 * 1024 + 64)
    }

    @Test func anEnrolledButtonStillRaisesDuringTheNoiseAndEnrolmentForgetsTheAddress() throws {
        var config = try T.config()
        var desk = AlertDesk(config: config, at: T.at(0))
        var clock = T.ManualClock()
        for i in 0..<500 { _ = desk.handle(Self.noise(i % 7), at: clock.now); clock.advance(ms: 5) }
        let press = desk.handle(T.press(8), at: clock.now)
        #expect(press.alerts.count == 1 && T.pages(press).map(\.0) == ["alice"])
        // Enrolled by a reload: it leaves the unknown list.
        config.devices[1].address = Self.noise(3).address
        desk.reconfigure(config)
        #expect(!desk.unknownAddresses.contains { $0.address == Self.noise(3).address })
    }

    @Test func repeatsStillArrivingAfterARestartAreRepeats() throws {
        let config = try T.config()
        var desk = AlertDesk(config: config, at: T.at(0))
        let o = desk.handle(T.press(8), at: T.at(0))
        // SIGKILL, restart 1.5 s later on a fresh monotonic clock; the module still repeats.
        let boot = Moment(wall: T.t0.adding(milliseconds: 1500), monotonicNanos: 800_000_000)
        var restarted = AlertDesk(config: config, openAlerts: o.alerts, issuedIDs: o.outbox.map(\.key), recentEvents: o.events, at: boot)
        let repeated = restarted.handle(T.press(8), at: boot)
        #expect(repeated.repeats == 1 && !repeated.changesState)
        // A real second press after the window joins the alert as before.
        let later = Moment(wall: boot.wall.adding(seconds: 10), monotonicNanos: boot.monotonicNanos + 10_000_000_000)
        let again = restarted.handle(T.press(8), at: later)
        #expect(again.alerts.first?.pressCount == 2 && again.alerts.first?.id == o.alerts[0].id)
        // Events older than the window do not seed: a press then is a press.
        var stale = AlertDesk(config: config, recentEvents: o.events, at: Moment(wall: T.t0.adding(seconds: 4), monotonicNanos: 1))
        #expect(stale.handle(T.press(8), at: Moment(wall: T.t0.adding(seconds: 4), monotonicNanos: 1)).alerts.count == 1)
    }
}
