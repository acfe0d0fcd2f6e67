import Foundation
import Testing
@testable import OnekeyCore

/// Configuration and roster work at district size: linear, and fast enough to print the figures.
@Suite struct DistrictScaleCoreTests {
    /// A district-shaped file: `grids` grids with a day and a wrapping night primary each, and
    /// `devices` devices spread over them. Grids below `gapGrids` have no Sunday night shift.
    static func district(devices: Int, grids: Int, gapGrids: Int = 0, zone: String = "Asia/Shanghai") -> String {
        var t = "[gateway]\nid = \"gw\"\ntimezone = \"\(zone)\"\n"
        for g in 0..<grids {
            t += "[[grid]]\nid = \"g\(g)\"\nname = \"第\(g)网格\"\n[[member]]\nid = \"d\(g)\"\n[[member]]\nid = \"n\(g)\"\n"
            t += "[[shift]]\ngrid = \"g\(g)\"\nmember = \"d\(g)\"\nstart = \"08:00\"\nend = \"20:00\"\n"
            let nights = g < gapGrids ? "[\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\"]" : "[\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]"
            t += "[[shift]]\ngrid = \"g\(g)\"\nmember = \"n\(g)\"\ndays = \(nights)\nstart = \"20:00\"\nend = \"08:00\"\n"
        }
        for i in 0..<devices {
            t += "[[device]]\nid = \"b\(i)\"\ndriver = \"ev1527\"\naddress = \"\(String(0x10000 + i, radix: 16))\"\ngrid = \"g\(i % grids)\"\nresident = \"陈婆婆\"\nlocation = \"3栋2单元401\"\n"
        }
        return t
    }

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    @Test func loadingIsLinearInTheNumberOfDevices() throws {
        var times = [Int: Double]()
        for n in [2_500, 20_000] {
            let text = Self.district(devices: n, grids: 500)
            var config: GatewayConfig?
            times[n] = try Self.seconds { config = try ConfigLoader.parse(text, path: "district.toml") }
            #expect(config?.devices.count == n)
            #expect(config?.device(id: "b\(n - 1)")?.grid == "g\((n - 1) % 500)")
            #expect(config?.grid(id: "g499")?.name == "第499网格" && config?.member(id: "n0") != nil && config?.device(id: "nope") == nil)
        }
        print(String(format: "config load (debug build): 2,500 devices %.3f s, 20,000 devices %.3f s", times[2_500]!, times[20_000]!))
        // 8× the devices: linear is ~8× the time, the old quadratic copy was ~60×.
        #expect(times[20_000]! < 25 * times[2_500]! + 0.5)
        #expect(times[20_000]! < 20)
    }

    /// The configuration keeps no storage of the parse tree (which is freed whole, so its pages
    /// go back to the kernel): long strings are fresh copies, short ones inline.
    @Test func configurationStringsAreDetachedFromTheParseTree() throws {
        let long = String(repeating: "第网格", count: 4)
        let copy = ConfigLoader.detached(long)
        #expect(copy == long)
        let a = long.utf8.withContiguousStorageIfAvailable { UInt(bitPattern: $0.baseAddress) }
        let b = copy.utf8.withContiguousStorageIfAvailable { UInt(bitPattern: $0.baseAddress) }
        #expect(a != nil && b != nil && a != b)
        #expect(ConfigLoader.detached("short") == "short")
    }

    @Test func lookupsFollowAListChangedAfterLoading() throws {
        var config = try ConfigLoader.parse(Self.district(devices: 3, grids: 2), path: "d.toml")
        config.devices[0].grid = "g1"
        config.devices.removeLast()
        #expect(config.device(id: "b0")?.grid == "g1" && config.device(id: "b2") == nil)
        let copy = try ConfigLoader.parse(Self.district(devices: 3, grids: 2), path: "d.toml")
        #expect(copy != config)
        config.devices = copy.devices
        #expect(copy == config)
    }

    @Test func gapsOfADistrictWeekTakeWellUnderASecond() throws {
        let config = try ConfigLoader.parse(Self.district(devices: 0, grids: 500, gapGrids: 100), path: "d.toml")
        let roster = Roster(config: config)
        var gaps = [RosterGaps.Gap]()
        let from = Timestamp(rfc3339: "2026-11-23T09:30:00+08:00")!  // a Monday morning
        let elapsed = Self.seconds { gaps = RosterGaps.find(roster: roster, grids: config.grids.map(\.id), from: from, days: 7) }
        print(String(format: "roster gaps, 500 grids × 7 days (debug build): %.4f s", elapsed))
        #expect(gaps.count == 100)
        #expect(gaps.allSatisfy { $0.minutes == 720 && $0.from == Timestamp(rfc3339: "2026-11-29T20:00:00+08:00")! })
        #expect(elapsed < 5)
    }

    @Test func checkConfigWarnsOncePerGridAndSumsUpTheRest() throws {
        let from = Timestamp(rfc3339: "2026-11-23T09:30:00+08:00")!
        let covered = try ConfigLoader.parse(Self.district(devices: 1, grids: 3), path: "d.toml")
        #expect(RosterGaps.warnings(config: covered, from: from).isEmpty)

        let one = try ConfigLoader.parse(Self.district(devices: 1, grids: 3, gapGrids: 1), path: "d.toml")
        let lines = RosterGaps.warnings(config: one, from: from)
        #expect(lines == ["warning: roster gap: grid g0 (第0网格) has no primary on shift from Sun 2026-11-29 20:00 for 720 min (Asia/Shanghai); 720 min uncovered in the next 7 days in 1 gap(s)"])

        let many = try ConfigLoader.parse(Self.district(devices: 1, grids: 500, gapGrids: 480), path: "d.toml")
        let capped = RosterGaps.warnings(config: many, from: from, limit: 20)
        #expect(capped.count == 21)
        #expect(capped.last == "warning: roster gap: 460 more grid(s) have gaps, \(460 * 720) min uncovered in all; list them with `onekeyctl roster gaps --days 7`")

        var empty = covered
        empty.shifts.removeAll { $0.grid == "g2" }
        #expect(RosterGaps.warnings(config: empty, from: from) == ["warning: roster gap: grid g2 (第2网格) has no primary on shift at any time in the next 7 days; its alarms go to the policy's fallback"])
    }
}

/// Hostile files: errors with a line, never a crash or a hang.
@Suite struct HostileConfigTests {
    @Test func deepNestingIsAnErrorNotAStackOverflow() throws {
        for opener in ["[", "{ a = "] {
            let text = "[gateway]\nid = \"gw\"\nx = " + String(repeating: opener, count: 200_000)
            #expect(throws: ConfigError.self) { try ConfigLoader.parse(text, path: "deep.toml") }
        }
        // 32 levels are still fine.
        _ = try TOML.parse("x = " + String(repeating: "[", count: 32) + String(repeating: "]", count: 32))
    }

    @Test func garbageAndTruncatedFilesGiveALineNumber() {
        var rng = SplitMix64(seed: 1)
        let good = Array(DistrictScaleCoreTests.district(devices: 20, grids: 3).utf8)
        for trial in 0..<2000 {
            var bytes: [UInt8]
            switch trial % 3 {
            case 0: bytes = (0..<Int.random(in: 0..<400, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1: bytes = Array(good.prefix(Int.random(in: 0..<good.count, using: &rng)))  // cut anywhere, even inside a UTF-8 sequence
            default:
                bytes = good
                for _ in 0..<3 { bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            }
            do { _ = try ConfigLoader.parse(String(decoding: bytes, as: UTF8.self), path: "g.toml") } catch {
                #expect(error.line >= 0 && error.line <= bytes.count + 1 && !error.message.isEmpty)
            }
        }
    }

    @Test func hugeValuesAndManyHeadersStayLinear() throws {
        let big = String(repeating: "陈", count: 1_000_000)
        let c = try ConfigLoader.parse(DistrictScaleCoreTests.district(devices: 0, grids: 1) + "[[member]]\nid = \"big\"\nname = \"\(big)\"\n", path: "b.toml")
        #expect(c.member(id: "big")?.name.count == 1_000_000)
        // 100,000 empty [[device]] headers: the first is reported, quickly.
        let headers = "[gateway]\nid = \"gw\"\n" + String(repeating: "[[device]]\n", count: 100_000)
        let t0 = DispatchTime.now().uptimeNanoseconds
        #expect(throws: ConfigError.self) { try ConfigLoader.parse(headers, path: "h.toml") }
        #expect(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 < 10)
    }
}
