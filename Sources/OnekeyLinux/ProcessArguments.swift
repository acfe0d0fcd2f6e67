import Glibc

/// The process's arguments. Swift's `CommandLine.arguments` comes out empty when the process
/// runs under an LD_PRELOAD library with its own constructor (libfaketime, as the clock-step
/// tests and operators debugging a board without an RTC use it); the kernel's copy in
/// /proc/self/cmdline is always there.
public enum ProcessArguments {
    public static var current: [String] {
        if CommandLine.argc > 0 { return CommandLine.arguments }
        guard let f = fopen("/proc/self/cmdline", "r") else { return [] }
        defer { fclose(f) }
        var bytes = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return bytes.split(separator: 0, omittingEmptySubsequences: false).dropLast(bytes.last == 0 ? 1 : 0).map { String(decoding: $0, as: UTF8.self) }
    }
}
