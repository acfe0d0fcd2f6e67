import Glibc

/// Most of a small site's RSS is clean code and read-only data of the static binary and its
/// libraries, mapped 64 KiB around every page that ran once (the kernel's fault-around), most of
/// it for start-up only (configuration parsing, migrations, Foundation's and ICU's set-up).
/// `release()` drops those mappings — the pages stay in the page cache — and marks them
/// `MADV_RANDOM`, so what runs afterwards is mapped back a page at a time: the RSS becomes the
/// code the daemon actually runs. Costs a minor fault per code page touched again.
///
/// Only mappings that cannot hold anything of the process's own: read-only, file-backed, with no
/// anonymous or dirty page (a RELRO segment after relocation has both, and is left alone).
public enum CodePages {
    /// Returns the bytes of resident mappings released.
    @discardableResult
    public static func release() -> Int {
        guard let smaps = readAll("/proc/self/smaps") else { return 0 }
        var released = 0
        var current: (start: UInt, end: UInt, eligible: Bool, rss: Int)?
        func finish() {
            guard let c = current, c.eligible, c.rss > 0, c.end > c.start,
                  let p = UnsafeMutableRawPointer(bitPattern: c.start) else { return }
            let length = Int(c.end - c.start)
            _ = madvise(p, length, MADV_RANDOM)
            if madvise(p, length, MADV_DONTNEED) == 0 { released += c.rss * 1024 }
        }
        for line in smaps.split(separator: "\n", omittingEmptySubsequences: true) {
            if let head = mappingHead(line) {
                finish()
                current = (head.start, head.end, head.readOnlyFile, 0)
            } else if current != nil {
                if let kb = field(line, "Rss:") { current!.rss = kb }
                if let kb = field(line, "Anonymous:"), kb > 0 { current!.eligible = false }
                if let kb = field(line, "Private_Dirty:"), kb > 0 { current!.eligible = false }
                if let kb = field(line, "Shared_Dirty:"), kb > 0 { current!.eligible = false }
            }
        }
        finish()
        return released
    }

    /// `start-end perms offset dev inode path`: the range, and whether it is a read-only mapping
    /// of a real file (not `[vdso]`, `[heap]`, an anonymous or a deleted file's mapping).
    static func mappingHead(_ line: Substring) -> (start: UInt, end: UInt, readOnlyFile: Bool)? {
        let parts = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        guard parts.count >= 5, let dash = parts[0].firstIndex(of: "-"),
              let start = UInt(parts[0][..<dash], radix: 16), let end = UInt(parts[0][parts[0].index(after: dash)...], radix: 16) else { return nil }
        let perms = parts[1]
        let path = parts.count == 6 ? parts[5].trimmingPrefix(while: { $0 == " " }) : ""
        let readOnlyFile = perms.count == 4 && perms.hasPrefix("r") && !perms.contains("w") && perms.hasSuffix("p")
            && path.hasPrefix("/") && !path.hasSuffix("(deleted)") && parts[4] != "0"
        return (start, end, readOnlyFile)
    }

    static func field(_ line: Substring, _ name: String) -> Int? {
        guard line.hasPrefix(name) else { return nil }
        return Int(line.dropFirst(name.count).split(separator: " ").first ?? "")
    }

    static func readAll(_ path: String) -> String? {
        guard let fd = try? syscall("open \(path)", { open(path, O_RDONLY | O_CLOEXEC) }) else { return nil }
        defer { close(fd) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while let n = try? syscall("read \(path)", { buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }), n > 0 {
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
