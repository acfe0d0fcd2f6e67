import Glibc

/// The kernel's random bytes, fetched 256 at a time: ids draw 80 fresh bits every millisecond,
/// and `SystemRandomNumberGenerator` makes one `getrandom` call per 8 bytes — two system calls on
/// the path of every press.
public struct PooledSystemRandom: RandomNumberGenerator, Sendable {
    private var pool = [UInt64](repeating: 0, count: 32)
    private var index = 32

    public init() {}

    public mutating func next() -> UInt64 {
        if index == pool.count { refill() }
        defer { index += 1 }
        return pool[index]
    }

    private mutating func refill() {
        // glibc's arc4random_buf: one getrandom call for the whole pool (it cannot fail).
        pool.withUnsafeMutableBytes { p in arc4random_buf(p.baseAddress!, p.count) }
        index = 0
    }
}
