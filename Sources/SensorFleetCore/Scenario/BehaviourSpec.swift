/// How devices behave beyond publishing readings: their status messages, firmware (reboot and
/// OTA timing), and the shadow. From fleet.yaml's `status_format:`, `firmware:` and `shadow:`
/// (documented in Devices/README.md, "Device behaviour").
public struct BehaviourSpec: Sendable, Equatable {
    /// What the retained status on `devices/{id}/status` carries.
    public enum StatusFormat: String, Sendable, Equatable, CaseIterable {
        /// `{"status":"online","firmware":"1.0.0","boot_count":3,"reset_reason":"power_on"}`;
        /// `{"status":"offline","reason":"connection_lost"}` as the will.
        case json
        /// The plain words `online` and `offline` (SensorFleet before the birth message).
        case plain
    }

    public var statusFormat: StatusFormat = .json
    public var firmware = FirmwareSettings()
    /// nil: no shadow (`shadow:` absent).
    public var shadow: ShadowSpec?

    public init() {}
}

/// `firmware:` in fleet.yaml: how long a reboot and an OTA update take, and how often an update
/// fails (then the device rolls back to the version it had).
public struct FirmwareSettings: Sendable, Equatable {
    /// Seconds a device stays offline while it reboots (`reboot_seconds`).
    public var rebootSeconds: Double = 5
    /// Seconds an OTA download takes (`download_seconds`); progress is told every quarter.
    public var downloadSeconds: Double = 4
    /// Seconds the image check takes (`verify_seconds`).
    public var verifySeconds: Double = 1
    /// Chance that the new firmware fails its first boot (`failure_probability`, 0–1); the device
    /// then reboots into the version it had (`reset_reason: rollback`). Drawn from the fleet seed.
    public var failureProbability: Double = 0

    public init() {}
}

/// `shadow:` in fleet.yaml: a desired/reported document per device.
public struct ShadowSpec: Sendable, Equatable {
    public enum Preset: String, Sendable, Equatable, CaseIterable {
        /// `devices/{id}/shadow/…`: the device keeps the document itself (a plain broker has no
        /// shadow service): desired on `update`, `update/delta`, `update/accepted`, `get`, `get/accepted`.
        case generic
        /// AWS IoT's topics: `$aws/things/{id}/shadow/update`, `/update/delta`, `/update/accepted`,
        /// `/get`, `/get/accepted`; the service keeps the document and its version.
        case aws
    }

    public var preset: Preset

    public init(preset: Preset) { self.preset = preset }

    /// The shadow's topic root of device `id`.
    public func base(_ id: String) -> String {
        switch preset {
        case .generic: "devices/\(id)/shadow"
        case .aws: "$aws/things/\(id)/shadow"
        }
    }
}
