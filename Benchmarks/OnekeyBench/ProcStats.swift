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

    /// Voluntary + involuntary context switches summed over every thread: each is a wake-up.
    static func contextSwitches(_ pid: Int32) -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.reduce(0) { sum, tid in
            let f = "/proc/\(pid)/task/\(tid)/status"
            return sum + (field(f, "voluntary_ctxt_switches") ?? 0) + (field(f, "nonvoluntary_ctxt_switches") ?? 0)
        }
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

func median(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs.sorted()[xs.count / 2] }

func mib(_ kib: Int) -> String { String(format: "%.1f MiB", Double(kib) / 1024) }
