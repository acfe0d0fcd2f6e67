import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import OnekeyLinux
import Testing
@testable import OnekeyDaemon

/// The journal on a real SQLite on a small tmpfs that is filled up and freed again (CONTRACT §10).
@Suite(.serialized) struct JournalTests {
    /// Disk full: presses are held in memory in order, the outbox is one sequence (stored then held),
    /// deliveries while held are forgotten, space freed → retry writes all; a restart keeps open
    /// alerts and the undelivered outbox. Nothing lost, order kept.
    @Test func fullDiskHoldsInOrderAndWritesAllOnceFreed() throws {
        let disk = try SmallDisk(kilobytes: 768)
        defer { disk.unmount() }
        var clock: UInt64 = 1
        let store = try Store(directory: disk.path)
        let journal = try Journal(store: store, monotonic: { clock })
        var presses = try PressSource()
        var expected: [OutboxRow] = []
        for _ in 0..<5 {
            let r = journal.record(presses.press(), at: presses.now)
            #expect(r.durable && r.log == nil)
            expected += r.messages
        }
        try store.checkpoint()
        disk.fill()
        var logs: [String] = []
        var held = 0
        for i in 0..<40 {
            clock += 1_000_000_000
            let r = journal.record(presses.press(), at: presses.now)
            if !r.durable { held += 1 }
            if let l = r.log { logs.append(l) }
            expected += r.messages
            if i == 0 { #expect(!r.durable) }
        }
        print("full disk: \(held) of 40 presses held; fault: \(journal.fault ?? "none"); \(logs.count) log line(s): \(logs.first ?? "")")
        #expect(held >= 30)
        #expect(journal.fault != nil)
        #expect(logs.count == 1)
        #expect(journal.depth == expected.count)
        // The gateway's view: every message, in seq order, stored and held merged.
        let pending = journal.pending(after: 0, limit: 10_000)
        #expect(pending.map(\.seq) == expected.map(\.seq))
        #expect(pending.map(\.seq) == pending.map(\.seq).sorted())
        #expect(journal.pending(after: expected[7].seq, limit: 3).map(\.seq) == expected[8...10].map(\.seq))
        // The broker comes back while the disk is still full: deliver the first 30 messages.
        journal.delivered(expected.prefix(30).map(\.seq))
        #expect(journal.pending(after: 0, limit: 10_000).map(\.seq) == expected.dropFirst(30).map(\.seq))
        #expect(journal.retry() == nil || journal.fault != nil)

        disk.free()
        clock += 1_000_000_000
        let line = journal.retry()
        #expect(line?.hasPrefix("store writes again") == true)
        #expect(journal.fault == nil && journal.heldMessages == 0)
        #expect(try store.outbox(after: 0, limit: 10_000).map(\.seq) == expected.dropFirst(30).map(\.seq))
        #expect(try store.outbox(after: 0, limit: 10_000).map(\.message) == expected.dropFirst(30).map(\.message))
        let openIDs = try store.openAlerts().map(\.id)
        #expect(openIDs.count == 45)
        #expect(try store.count("events") == 45)
        try store.close()

        let reopened = try Store(directory: disk.path)
        #expect(reopened.opening == .opened)
        #expect(try reopened.openAlerts().map(\.id) == openIDs)
        let again = try Journal(store: reopened)
        #expect(again.depth == expected.count - 30)
        #expect(again.pending(after: 0, limit: 10_000).map(\.message.key) == expected.dropFirst(30).map(\.message.key))
        // New seqs continue after the stored ones.
        let next = again.record(presses.press(), at: presses.now)
        #expect(next.durable && next.messages.first!.seq > expected.last!.seq)
    }

    /// Held items beyond the limit are dropped oldest first and counted; the fault line says so,
    /// logged once then rate limited (one line a minute), and the recovery is logged once.
    @Test func heldLimitCountsWhatIsDroppedAndLogsAreRateLimited() throws {
        let disk = try SmallDisk(kilobytes: 512)
        defer { disk.unmount() }
        var clock: UInt64 = 1
        let store = try Store(directory: disk.path)
        let journal = try Journal(store: store, heldLimit: 50, monotonic: { clock })
        var presses = try PressSource()
        try store.checkpoint()
        disk.fill()
        var logs = 0, messages: [OutboxRow] = []
        for _ in 0..<1000 {
            clock += 100_000_000  // 0.1 s a press: 100 s in all
            let r = journal.record(presses.press(), at: presses.now)
            #expect(!r.durable)
            messages += r.messages
            if r.log != nil { logs += 1 }
        }
        print("1000 presses on a full disk: \(logs) log lines, held \(journal.heldMessages) messages / \(journal.heldEvents) events, dropped \(journal.dropped)")
        #expect(logs == 2)
        let held = journal.heldMessages, events = journal.heldEvents
        #expect((50...55).contains(held) && (50...55).contains(events))
        #expect(journal.dropped == messages.count - held + 1000 - events)
        #expect(journal.pending(after: 0, limit: 100).map(\.seq) == messages.suffix(held).map(\.seq))
        #expect(journal.fault?.contains("SQLITE_FULL") == true)
        disk.free()
        #expect(journal.retry()?.contains("dropped") == true)
        #expect(journal.retry() == nil)
        #expect(try store.outboxSummary().count == held && store.count("events") == events)
        #expect(try store.openAlerts().count == 1000)  // every alert, in its latest state
    }

    /// While holding, a record never writes (the alarm path stays cheap, the order is kept) even
    /// when space is back; `retry` writes the backlog in chunks within its budget, oldest first.
    @Test func retryDrainsInChunksAndKeepsOrder() throws {
        let disk = try SmallDisk(kilobytes: 8192)
        defer { disk.unmount() }
        let store = try Store(directory: disk.path)
        let journal = try Journal(store: store, retryBudget: 1500)
        var presses = try PressSource()
        try store.checkpoint()
        disk.fill()
        var seqs: [Int64] = []
        for _ in 0..<400 { seqs += journal.record(presses.press(), at: presses.now).messages.map(\.seq) }
        disk.free()
        let r1 = journal.record(presses.press(), at: presses.now)
        #expect(!r1.durable)
        seqs += r1.messages.map(\.seq)
        #expect(journal.retry() == nil)  // budget spent, more held
        #expect(journal.heldMessages > 0 && journal.fault != nil)
        #expect(try store.openAlerts().isEmpty)  // alerts go with the last chunk
        #expect(journal.pending(after: 0, limit: 100_000).map(\.seq) == seqs)
        var calls = 1
        while (journal.heldMessages > 0 || journal.heldEvents > 0) && calls < 50 { _ = journal.retry(); calls += 1 }
        print("drained \(seqs.count) messages in \(calls) retry calls")
        #expect(journal.fault == nil)
        #expect(try store.outbox(after: 0, limit: 100_000).map(\.seq) == seqs)
        #expect(try store.openAlerts().count == 401)
        let r2 = journal.record(presses.press(), at: presses.now)
        #expect(r2.durable && journal.depth == seqs.count + r2.messages.count)
    }
}
