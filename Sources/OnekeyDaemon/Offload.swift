import OnekeyCore
import OnekeyLinux

/// What a job run off the loop hands back.
enum OffloadResult: Sendable {
    /// A control answer, already serialized (a 20,000-device list is megabytes of JSON).
    case answer([UInt8])
    case config(Result<AlertDesk.PreparedConfig, ConfigError>)
}

/// Work that grows with the configuration (roster-gap searches, device lists, reload's parse and
/// validation) runs on a background thread against an immutable snapshot, and its result comes
/// back to the loop through an eventfd mailbox: it never delays a frame, a timer or a PUBACK.
typealias Offload = LoopWorker<OffloadResult>
