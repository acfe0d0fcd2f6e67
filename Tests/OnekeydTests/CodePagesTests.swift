import Foundation
import OnekeyCore
import OnekeyHarness
import Testing
@testable import OnekeyDaemon
@testable import OnekeyLinux

/// Releasing mapped code pages (`CodePages`, after start and hourly) drops only read-only file
/// mappings with nothing of the process's own in them, and the process runs on.
@Suite struct CodePagesTests {
    @Test func onlyCleanReadOnlyFileMappingsAreCandidates() {
        let lines: [(String, Bool)] = [
            ("55d0a0000000-55d0a1000000 r-xp 00001000 fe:01 123 /usr/bin/onekeyd", true),
            ("55d0a1000000-55d0a1100000 r--p 00100000 fe:01 123 /usr/bin/onekeyd", true),  // RELRO too: smaps decides
            ("55d0a1100000-55d0a1200000 rw-p 00200000 fe:01 123 /usr/bin/onekeyd", false),
            ("7f0000000000-7f0000001000 r--p 00000000 00:00 0 ", false),                 // anonymous
            ("7f0000000000-7f0000001000 r-xp 00000000 00:00 0 [vdso]", false),
            ("7f0000000000-7f0000001000 r--s 00000000 fe:01 9 /dev/shm/x", false),        // shared
            ("7f0000000000-7f0000001000 r-xp 00000000 fe:01 9 /tmp/gone (deleted)", false),
        ]
        for (line, want) in lines {
            #expect(CodePages.mappingHead(Substring(line))?.readOnlyFile == want, "\(line)")
        }
        #expect(CodePages.mappingHead("Rss:                 4 kB") == nil)
    }

    @Test func theProcessRunsOnAfterItsCodePagesAreReleased() throws {
        let released = CodePages.release()
        #expect(released > 0, "a test binary has resident code pages to release")
        // Code from every part of the process still runs: Foundation, SQLite, zlib, the core.
        let dir = try TempDirectory.make("codepages")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Store(directory: dir)
        var presses = try PressSource()
        let rows = try store.commit(presses.press(), at: presses.now)
        #expect(try store.outbox(after: 0, limit: 10).map(\.message) == rows.map(\.message))
        #expect(try JSON.parse(Array("{\"a\":[1,2,\"陈\"]}".utf8))["a"]?.arrayValue?.count == 3)
        try store.close()
    }
}
