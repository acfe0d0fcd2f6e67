import Foundation
import Testing
import OnekeyFuzzTargets

/// Replays every input the fuzzers ever kept (Fuzz/Regressions/TARGET/*) and every seed
/// (Fuzz/Corpus/TARGET/*) through the same target bodies libFuzzer runs (scripts/fuzz.sh).
/// A target body traps on a crash or a broken invariant, so a regression fails this run.
/// Inputs of bugs not yet fixed sit under Fuzz/Regressions/TARGET/known-bugs/ and are replayed
/// by `knownBugs` (disabled, one line per bug naming the file at fault).
@Suite struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

    static func inputs(_ folder: String, _ target: String) -> [URL] {
        let dir = root.appendingPathComponent(folder).appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().map { dir.appendingPathComponent($0) }
            .filter { (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true }
    }

    @Test func everyTargetHasSeeds() {
        for target in FuzzTargets.all {
            #expect(!Self.inputs("Corpus", target.name).isEmpty, "no seeds for \(target.name)")
        }
    }

    @Test(arguments: FuzzTargets.all.map(\.name))
    func replaySeedsAndRegressions(_ name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        let files = Self.inputs("Corpus", name) + Self.inputs("Regressions", name)
        for file in files { target.run(Array(try Data(contentsOf: file))) }
    }

    @Test func everyRegressionFolderNamesATarget() throws {
        let dir = Self.root.appendingPathComponent("Regressions")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        for n in names where !n.hasPrefix(".") { #expect(FuzzTargets.named(n) != nil, "Fuzz/Regressions/\(n) is no target") }
    }
}
