import Foundation
import GRDB
import OnekeyCore
import OnekeyHarness
import Testing
@testable import OnekeyDaemon

/// The outbox stores a commit's messages as one deflated row: what goes in comes out, damaged
/// rows are dropped and reported instead of wedging the outbox, partial delivery survives a restart.
@Suite struct OutboxBatchTests {
    static func message(_ i: Int, payload: Int = 300, retain: Bool = false) -> OutboundMessage {
        let body = "{\"alert\":\"01M7Q5DYJ035R1R0K6C8A0QN\(i)\",\"resident\":\"陈婆婆\",\"pad\":\"" + String(repeating: "x", count: max(0, payload - 60)) + "\"}"
        return OutboundMessage(topic: "onekey/v1/gateways/gw/alerts/\(i)", payload: Array(body.utf8), retain: retain, key: "01M7Q5DYJ035R1R0K6C8A\(String(format: "%05d", i))")
    }

    @Test func whatGoesInComesOutWithEveryFieldAndFormat() throws {
        var d = Deflater()
        let cases: [[OutboundMessage]] = [
            [Self.message(1)],
            [OutboundMessage(topic: "t", payload: [], retain: true, key: "k")],  // a retained clear
            (0..<64).map { Self.message($0, retain: $0 % 2 == 0) },
            [Self.message(7, payload: 200_000)],  // far larger than any real message
            [OutboundMessage(topic: "", payload: Array(0...255).map(UInt8.init), retain: false, key: "")],  // binary, incompressible
        ]
        for messages in cases {
            let b = OutboxBatch(firstSeq: 41, createdAt: Timestamp(milliseconds: 1_795_000_000_000), messages: messages)
            let body = b.body(&d)
            #expect(body.count <= OutboxBatch.records(messages).count + 1, "never more than the plain records and a format byte")
            let back = try OutboxBatch.decode(firstSeq: 41, count: messages.count, createdAt: b.createdAt, body: body)
            #expect(back == b)
        }
        // A press's five messages in one row that fits a 512-byte page.
        let press = (0..<5).map { Self.message($0, payload: 350) }
        let body = OutboxBatch(firstSeq: 1, createdAt: Timestamp(milliseconds: 0), messages: press).body(&d)
        #expect(body.first == 1 && body.count < 477, "deflated: \(body.count) bytes for \(OutboxBatch.records(press).count)")
    }

    /// The store primes its compressor after a press's pages are out; a primed stream (primed
    /// once or many times) writes exactly what a fresh one writes, and it still reads back.
    @Test func aPrimedStreamWritesWhatAFreshOneWrites() throws {
        let batches = (0..<4).map { i in OutboxBatch(firstSeq: Int64(i * 5 + 1), createdAt: Timestamp(milliseconds: 0), messages: (0..<5).map { Self.message(i * 5 + $0) }) }
        var primed = Deflater()
        for (i, b) in batches.enumerated() {
            for _ in 0..<i { primed.prime() }
            var fresh = Deflater()
            let body = b.body(&primed)
            #expect(body == b.body(&fresh))
            #expect(body.first == 1)
            #expect(try OutboxBatch.decode(firstSeq: b.firstSeq, count: 5, createdAt: b.createdAt, body: body) == b)
        }
    }

    @Test func groupingKeepsRunsOfConsecutiveSeqsFromOneCommit() {
        let t0 = Timestamp(milliseconds: 1), t1 = Timestamp(milliseconds: 2)
        var rows = (1...3).map { OutboxRow(seq: Int64($0), message: Self.message($0), createdAt: t0) }
        rows += [OutboxRow(seq: 5, message: Self.message(5), createdAt: t0),  // a gap
                 OutboxRow(seq: 6, message: Self.message(6), createdAt: t1)]  // another commit
        rows += (7...(7 + 130)).map { OutboxRow(seq: Int64($0), message: Self.message($0), createdAt: t1) }
        let batches = OutboxBatch.grouping(rows)
        #expect(batches.map(\.firstSeq) == [1, 5, 6, 70, 134])
        #expect(batches.map(\.messages.count) == [3, 1, 64, 64, 4])
        #expect(batches.flatMap(\.rows) == rows)
    }

    /// Garbage, truncated, wrong-count and bomb bodies: each throws `Damaged`, none crashes or
    /// allocates more than its limit.
    @Test func damagedBodiesAreRejected() {
        var d = Deflater()
        let good = OutboxBatch(firstSeq: 1, createdAt: Timestamp(milliseconds: 0), messages: (0..<5).map { Self.message($0) }).body(&d)
        let zeros = OutboxBatch(firstSeq: 1, createdAt: Timestamp(milliseconds: 0),
                                messages: [OutboundMessage(topic: "t", payload: [UInt8](repeating: 0, count: 4 << 20), retain: false, key: "k")]).body(&d)
        var bodies: [(String, [UInt8], Int)] = [
            ("empty", [], 5), ("unknown format", [9] + good.dropFirst(), 5), ("truncated", Array(good.prefix(good.count / 2)), 5),
            ("count too high", good, 6), ("count too low", good, 4), ("trailing bytes", good + [0, 1, 2], 5),
            ("plain records cut", [0, 0x85], 1), ("length past the end", [0, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], 1),
            ("inflates past its limit", zeros, 1),
        ]
        for i in 1..<good.count {
            for mask: UInt8 in [0x01, 0x80, 0xFF] { var g = good; g[i] ^= mask; bodies.append(("bit flip \(mask) at \(i)", g, 5)) }
        }
        // Random bodies of every length up to 600 bytes, both formats (a fixed seed: reproducible).
        var rng = SplitMix64(seed: 0x6F6E656B6579)
        for n in 0..<600 {
            let body = [UInt8(n % 2)] + (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            bodies.append(("random \(n)", body, 1 + n % 5))
        }
        for (name, body, count) in bodies {
            do {
                let b = try OutboxBatch.decode(firstSeq: 1, count: count, createdAt: Timestamp(milliseconds: 0), body: body)
                // A flip inside a payload's literal bytes can decode (the messages differ but parse),
                // and random bytes can happen to be valid records.
                #expect(name.hasPrefix("bit flip") || name.hasPrefix("random"), "\(name) decoded to \(b.messages.count) messages")
            } catch {
                #expect(error is OutboxBatch.Damaged, "\(name): \(error)")
            }
        }
    }

    /// A row that cannot be read is reported and removed; the rows around it are still sent, and
    /// a partly delivered row comes back after a restart with only its undelivered messages.
    @Test func aDamagedRowIsDroppedAndReportedAndPartialDeliverySurvivesARestart() throws {
        let dir = try TempDirectory.make("batches")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var presses = try PressSource()
        let store = try Store(directory: dir)
        var all: [OutboxRow] = []
        for _ in 0..<3 { all += try store.commit(presses.press(), at: presses.now) }
        let perPress = all.count / 3
        try store.db.write { db in
            try db.execute(sql: "UPDATE outbox_batches SET body = x'01deadbeef' WHERE first_seq = ?", arguments: [all[perPress].seq])
        }
        let read = try store.outbox(after: 0, limit: 1000)
        #expect(read.map(\.seq) == all.prefix(perPress).map(\.seq) + all.suffix(perPress).map(\.seq))
        let damage = store.takeDamage()
        #expect(damage.count == 1 && damage[0].contains("\(perPress) undelivered message(s) lost"), "\(damage)")
        #expect(store.takeDamage().isEmpty, "reported once")
        #expect(try store.outboxSummary().count == 2 * perPress)

        // Deliver the first press's messages and two of the third's, then restart.
        try store.deleteOutbox(all.prefix(perPress).map(\.seq) + all.suffix(perPress).prefix(2).map(\.seq))
        try store.close()
        let again = try Store(directory: dir)
        let left = try again.outbox(after: 0, limit: 1000)
        #expect(left.map(\.seq) == all.suffix(perPress).map(\.seq), "the partly delivered row is sent again whole (same msg_ids)")
        #expect(left.map(\.message) == all.suffix(perPress).map(\.message))
        #expect(try again.count("outbox_batches") == 1, "the damaged row and the delivered one are gone")
        #expect(again.allocateSeqs(1) == all.last!.seq + 1)
    }

    /// Reading the rows after a seq looks back only as far as a batch can reach, and a long
    /// backlog reads in order across many rows.
    @Test func readingAfterASeqFindsTheRestOfAPartlySentBatch() throws {
        let dir = try TempDirectory.make("batches")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Store(directory: dir)
        let t = Timestamp(milliseconds: 1_795_000_000_000)
        var b = StoreBatch()
        let first = store.allocateSeqs(1000)
        b.outbox = (0..<1000).map { OutboxRow(seq: first + Int64($0), message: Self.message($0, payload: 80), createdAt: t) }
        try store.write(b)
        #expect(try store.count("outbox_batches") == 16)
        #expect(try store.outbox(after: first + 100, limit: 3).map(\.seq) == [first + 101, first + 102, first + 103])
        var seen: [Int64] = [], after: Int64 = 0
        while true {
            let rows = try store.outbox(after: after, limit: 37)
            guard let last = rows.last else { break }
            seen += rows.map(\.seq)
            after = last.seq
        }
        #expect(seen == b.outbox.map(\.seq))
        try store.deleteOutbox(Array(seen.prefix(999)))
        #expect(try store.outbox(after: 0, limit: 10).map(\.seq) == [seen.last!])
    }
}

extension OutboxBatchTests {
    /// A retained-state snapshot is queued once: while one is still undelivered (in this run or
    /// left by a killed one) the gateway does not queue another.
    @Test func aSnapshotIsWaitingUntilItsLastMessageIsDelivered() throws {
        let dir = try TempDirectory.make("snapshot")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var presses = try PressSource()
        var store = try Store(directory: dir)
        for _ in 0..<80 { _ = try store.commit(presses.press(), at: presses.now) }
        #expect(try !store.snapshotWaiting(), "presses are not a snapshot")
        let snapshot = presses.desk.retainedSnapshot(at: presses.now)
        #expect(snapshot.isRetainedSnapshot && snapshot.outbox.count > OutboxBatch.maxMessages, "spans several rows")
        let rows = try store.commit(snapshot, at: presses.now)
        #expect(try store.snapshotWaiting())
        try store.close()
        store = try Store(directory: dir)  // a restart: still waiting
        #expect(try store.snapshotWaiting())
        try store.deleteOutbox(rows.dropLast().map(\.seq))
        #expect(try store.snapshotWaiting(), "its last message is not delivered yet")
        try store.deleteOutbox([rows.last!.seq])
        #expect(try !store.snapshotWaiting())
        try store.close()
    }
}
