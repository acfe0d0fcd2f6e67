import Foundation
import Glibc
import OnekeyLinux

/// What the kernel says about the daemon: memory, CPU, disk writes and context switches.
enum ProcStats {
    static func field(_ file: String, _ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            return Int(line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }

    static func rssKiB(_ pid: Int32) -> Int { field("/proc/\(pid)/status", "VmRSS") ?? -1 }

    /// Bytes the process caused to be sent to the storage layer (`/proc/PID/io` write_bytes).
    static func writeBytes(_ pid: Int32) -> Int { field("/proc/\(pid)/io", "write_bytes") ?? -1 }

    /// Voluntary + involuntary context switches per thread (each is a wake-up), by thread id.
    static func contextSwitches(_ pid: Int32) -> [String: Int] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        var out = [String: Int]()
        for tid in tasks {
            let f = "/proc/\(pid)/task/\(tid)/status"
            out[tid] = (field(f, "voluntary_ctxt_switches") ?? 0) + (field(f, "nonvoluntary_ctxt_switches") ?? 0)
        }
        return out
    }

    /// Switches between two samples: threads alive at the end count from their first sample (or
    /// from 0 when born in between); a thread that ended in between is not counted.
    static func switchesBetween(_ a: [String: Int], _ b: [String: Int]) -> Int {
        b.reduce(0) { $0 + max(0, $1.value - (a[$1.key] ?? 0)) }
    }

    static func cpuTicks(_ pid: Int32) -> Int {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        guard let close = text.lastIndex(of: ")") else { return -1 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)  // utime + stime
    }
}

func percentiles(_ xs: [Double]) -> String {
    guard !xs.isEmpty else { return "(no samples)" }
    let s = xs.sorted()
    func p(_ q: Double) -> Double { s[min(s.count - 1, Int(Double(s.count - 1) * q))] }
    return String(format: "p50 %7.3f ms   p99 %7.3f ms   max %7.3f ms   (n=%d)", p(0.5), p(0.99), s.last ?? 0, s.count)
}

/// The same p50 as `percentiles` prints.
func median(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs.sorted()[(xs.count - 1) / 2] }

func mib(_ kib: Int) -> String { String(format: "%.1f MiB", Double(kib) / 1024) }
