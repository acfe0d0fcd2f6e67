import Foundation
import Glibc
import GRDB
import OnekeyCore
import OnekeyHarness
import OnekeyLinux
@testable import OnekeyDaemon

/// Realistic outcomes from the real alert desk: each press on a different enrolled button raises
/// a new alert and pages two members (the worst case for the outbox).
struct PressSource {
    var desk: AlertDesk
    var wall: Int64
    let addresses: [String]
    var next = 0

    init(devices: Int = 200, start: Int64 = 1_795_000_000_000) throws {
        let devs = Rig.addresses(devices)
        addresses = devs.map(\.address)
        let text = SampleConfig.text(brokerPort: 1883, portPath: nil, stateDir: "/tmp", socket: "/tmp/x.sock", devices: devs)
        desk = AlertDesk(config: try ConfigLoader.parse(text, path: "test.toml"),
                         at: Moment(wall: Timestamp(milliseconds: start), monotonicNanos: UInt64(start) * 1_000_000))
        wall = start
    }

    /// A press on the next button (round robin), 10 s after the previous one.
    mutating func press() -> DeskOutcome {
        wall += 10_000
        let address = addresses[next % addresses.count]
        next += 1
        let raw = Rig.frame(address)
        let frame = DecodedFrame(driver: .ev1527, address: address, code: "8", raw: raw)
        return desk.handle(frame, at: Moment(wall: Timestamp(milliseconds: wall), monotonicNanos: UInt64(wall) * 1_000_000))
    }

    var now: Timestamp { Timestamp(milliseconds: wall) }
}

/// A small tmpfs mounted on a fresh directory (the test runs as root); unmounted on `unmount()`.
final class SmallDisk {
    let path: String
    private var filler: Int32 = -1

    init(kilobytes: Int) throws {
        path = try TempDirectory.make("tmpfs")
        try run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(kilobytes)k", "tmpfs", path])
    }

    /// Writes a filler file until the file system says ENOSPC.
    func fill() {
        filler = open(path + "/filler", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let chunk = [UInt8](repeating: 0xAB, count: 4096)
        while chunk.withUnsafeBytes({ write(filler, $0.baseAddress, $0.count) }) > 0 {}
        let one = [UInt8](repeating: 0, count: 1)
        while one.withUnsafeBytes({ write(filler, $0.baseAddress, 1) }) > 0 {}
    }

    func free() {
        if filler >= 0 { close(filler); filler = -1 }
        unlink(path + "/filler")
    }

    func unmount() {
        free()
        try? run("/bin/umount", ["-l", path])
        rmdir(path)
    }
}

func run(_ tool: String, _ args: [String]) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = args
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw HarnessError("\(tool) \(args.joined(separator: " ")) exited \(p.terminationStatus)") }
}

/// This process's I/O counters (`/proc/self/io`): bytes passed to write() and bytes sent to storage.
func processIO() -> (wchar: Int, writeBytes: Int) {
    let text = (try? String(contentsOfFile: "/proc/self/io", encoding: .utf8)) ?? ""
    func field(_ name: String) -> Int {
        text.split(separator: "\n").first { $0.hasPrefix(name + ":") }.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
    }
    return (field("wchar"), field("write_bytes"))
}

extension Store {
    func pragma(_ name: String) throws -> String {
        try db.read { db in try String.fetchOne(db, sql: "PRAGMA \(name)") ?? "" }
    }

    func count(_ table: String) throws -> Int {
        try db.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0 }
    }

    /// Stops automatic checkpoints, so every page a transaction writes stays countable in the WAL.
    /// What a SIGKILL would leave now: the database and its WAL copied into `directory`, to be
    /// opened as a store of its own.
    func copyFiles(to directory: String) throws {
        for suffix in ["", "-wal"] { try FileManager.default.copyItem(atPath: path + suffix, toPath: directory + "/" + Store.fileName + suffix) }
    }

    func holdCheckpoints() throws {
        try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_autocheckpoint = 0") }
    }
}

func percentile(_ xs: [Double], _ p: Double) -> Double {
    let s = xs.sorted()
    return s[min(s.count - 1, Int(Double(s.count) * p))]
}
