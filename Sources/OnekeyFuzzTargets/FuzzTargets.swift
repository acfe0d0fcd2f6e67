import OnekeyCore

/// One fuzz target: a name and a body that must neither crash, trap nor hang on any input.
/// The bodies are shared by the libFuzzer binary (scripts/fuzz.sh, Fuzz/Entry/main.swift) and by
/// `FuzzRegressionTests`, which replays every file under Fuzz/Regressions/NAME/ through them.
public struct FuzzTarget: Sendable {
    public let name: String
    public let run: @Sendable ([UInt8]) -> Void
    public init(name: String, run: @escaping @Sendable ([UInt8]) -> Void) { self.name = name; self.run = run }
}

public enum FuzzTargets {
    /// The registry. A new parser of outside bytes gets a line here.
    public static let all: [FuzzTarget] = [
        FuzzTarget(name: "ev1527", run: DecoderFuzz.ev1527),
        FuzzTarget(name: "surgard", run: DecoderFuzz.surgard),
        FuzzTarget(name: "evdev", run: DecoderFuzz.evdev),
        FuzzTarget(name: "json", run: WireFuzz.json),
        FuzzTarget(name: "toml", run: ConfigFuzz.toml),
        FuzzTarget(name: "config", run: ConfigFuzz.config),
        FuzzTarget(name: "mqtt-ack", run: AckFuzz.ack),
        FuzzTarget(name: "control-request", run: WireFuzz.controlRequest),
        FuzzTarget(name: "modem-at", run: { ATLineParser.fuzz($0) }),
    ]

    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}

/// Fails loudly (a trap the fuzzer records as a crash) when an invariant of a parser breaks.
@inline(__always) func invariant(_ ok: Bool, _ what: @autoclosure () -> String) {
    if !ok { fatalError("fuzz invariant broken: \(what())") }
}
