// libFuzzer entry for the targets in Sources/OnekeyFuzzTargets. Built by scripts/fuzz.sh with
// `swiftc -sanitize=fuzzer,address -parse-as-library`; the target is chosen by ONEKEY_FUZZ_TARGET.
import OnekeyFuzzTargets
#if canImport(Glibc)
import Glibc
#endif

nonisolated(unsafe) var selected: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    let name = getenv("ONEKEY_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = FuzzTargets.named(name) else {
        print("ONEKEY_FUZZ_TARGET must be one of: \(FuzzTargets.all.map(\.name).joined(separator: " "))")
        exit(64)
    }
    selected = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selected?.run(bytes)
    return 0
}
