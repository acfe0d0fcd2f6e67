// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "onekeyd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "onekeyd", targets: ["onekeyd"]),
        .executable(name: "onekeyctl", targets: ["onekeyctl"]),
        .executable(name: "onekey-bench", targets: ["OnekeyBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
    ],
    targets: [
        // Thin C shims: module maps over the system libraries, nothing else.
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CUdev", pkgConfig: "libudev", providers: [.apt(["libudev-dev"])]),
        .systemLibrary(name: "CUmockdev", pkgConfig: "umockdev-1.0", providers: [.apt(["libumockdev-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // The one C source of our own: SQLite's platform VFS with a WAL write gatherer (one write
        // per commit instead of two per page).
        .target(name: "CWalBuffer", linkerSettings: [.linkedLibrary("sqlite3")]),

        // Pure domain core: models, configuration, decoders, dedup, roster, alert desk. No I/O; clock injected.
        .target(name: "OnekeyCore"),

        // Fuzz target bodies (every parser of outside bytes), shared by the libFuzzer binary
        // (scripts/fuzz.sh) and the regression replay in OnekeyCoreTests.
        .target(name: "OnekeyFuzzTargets", dependencies: ["OnekeyCore"]),

        // Linux I/O: syscalls, termios, the sd-event loop, libmosquitto (non-threaded), sd_notify/journald, udev.
        .target(name: "OnekeyLinux", dependencies: [
            "OnekeyCore", "CMosquitto", "CSystemd", "CUdev",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Daemon wiring: store, gateway, services, control socket.
        .target(name: "OnekeyDaemon", dependencies: [
            "OnekeyCore", "OnekeyLinux", "CZlib", "CWalBuffer",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // onekeyctl's commands and rendering: a client of the control socket only.
        .target(name: "OnekeyControl", dependencies: [
            "OnekeyCore", "OnekeyLinux",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .executableTarget(name: "onekeyd", dependencies: ["OnekeyDaemon"]),
        .executableTarget(name: "onekeyctl", dependencies: ["OnekeyControl"]),

        // Real-parts harness shared by integration tests and the benchmark:
        // a mosquitto on a free loopback port, ptys, an MQTT subscriber, the built daemon.
        .target(name: "OnekeyHarness", dependencies: ["OnekeyCore", "OnekeyLinux", "CMosquitto"]),

        .executableTarget(name: "OnekeyBench", dependencies: ["OnekeyHarness", "OnekeyCore"], path: "Benchmarks/OnekeyBench"),

        // Test-only: owns a umockdev testbed so tests can plug and unplug devices at run time.
        .executableTarget(name: "onekey-umockdev-helper", dependencies: ["CUmockdev"], path: "Tests/UmockdevHelper"),

        .testTarget(name: "OnekeyCoreTests", dependencies: ["OnekeyCore", "OnekeyFuzzTargets"]),
        .testTarget(name: "OnekeydTests", dependencies: ["OnekeyHarness", "OnekeyCore", "OnekeyLinux", "OnekeyControl", "OnekeyDaemon", "onekeyd", "onekeyctl", "onekey-umockdev-helper"]),
    ],
    swiftLanguageModes: [.v6]
)
