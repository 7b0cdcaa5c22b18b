// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "SensorFleet",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sensorfleet", targets: ["sensorfleet"]),
        .library(name: "SensorFleetCore", targets: ["SensorFleetCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.8.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.10.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.3.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // The runtime of the generated Sparkplug B code (Sources/SensorFleetCore/Sparkplug); the
        // code is generated once by Scripts/regenerate-sparkplug, not by a build plugin.
        // Its default traits off: `BinaryDelimitedStreams` imports Foundation (and so would link
        // Foundation and ICU into the agent, issue 15); we use neither it nor `FieldMaskUtilities`.
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0", traits: []),
    ],
    targets: [
        // The C library and nothing else: libmosquitto plus the OpenSSL calls we need for our own SSL_CTX.
        .systemLibrary(
            name: "CMosquitto",
            pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev", "libssl-dev"])]
        ),
        // The system's SQLite, for the durable outbox (Sources/SensorFleetCore/State/SQLiteDatabase.swift).
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // libyaml: the YAML parser the fleet files are read with (Sources/SensorFleetCore/Config/YAML).
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        // A `socketpair` that libmosquitto's `mosquitto_new` can be refused (one descriptor per
        // client instead of three); see Sources/CSocketpairGuard/include/socketpair_guard.h.
        .target(name: "CSocketpairGuard", linkerSettings: [.linkedLibrary("dl")]),
        // epoll and eventfd behind a few plain C functions, for the reactor.
        .target(name: "CEpoll"),
        // posix_spawn's close-from action (children inherit no device socket): command sensors
        // and the tests' child processes.
        .target(name: "CSpawn"),
        // The only Swift code that imports the C modules: the reactor and the MQTT client.
        .target(
            name: "MosquittoKit",
            dependencies: [
                "CMosquitto",
                "CSocketpairGuard",
                "CEpoll",
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Specs, validation, sensors, devices, supervisor, fleet, reports. No C here but libyaml
        // (read in Config/YAML only), SQLite (State/SQLiteDatabase.swift only) and CSpawn
        // (Sensors/SpawnActions.swift only).
        .target(
            name: "SensorFleetCore",
            dependencies: [
                "MosquittoKit",
                "CSQLite",
                "CYAML",
                "CSpawn",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .executableTarget(
            name: "sensorfleet",
            dependencies: [
                "SensorFleetCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            // The Swift runtime and FoundationEssentials linked into the binary (only the parts
            // it uses), in every build, so the tests run what ships and the Pi needs no Swift
            // runtime. No Foundation and no ICU at all: no file of ours imports more than
            // FoundationEssentials (issue 15; AgentFootprintTests checks the binary's bytes and
            // its shared libraries; docs/raspberry-pi.md § Footprint).
            swiftSettings: [.unsafeFlags(["-static-stdlib"])],
            linkerSettings: [.unsafeFlags(["-static-stdlib"])]
        ),
        // What both test targets share (as hummingbird ships HummingbirdTesting): temporary
        // fleets and a test CA, a real mosquitto (TestBroker), its subscriber, child processes,
        // loopback sockets, a TCP proxy that cuts connections, waiting with deadlines.
        .target(
            name: "SensorFleetTesting",
            dependencies: [
                "SensorFleetCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(
            name: "SensorFleetCoreTests",
            dependencies: [
                "SensorFleetCore",
                "MosquittoKit",
                "SensorFleetTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "SensorFleetCore",
                "SensorFleetTesting",
                "MosquittoKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ]
)
