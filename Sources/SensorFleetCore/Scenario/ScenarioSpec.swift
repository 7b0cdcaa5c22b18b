/// Timed events that happen to chosen devices during a run (`scenario:` in fleet.yaml, or
/// `run --scenario FILE`), documented in Devices/README.md ("Scenarios").
public struct ScenarioSpec: Sendable, Equatable {
    public var events: [ScenarioEvent]
    /// The file the events come from, as the user sees it.
    public var file: String

    public init(events: [ScenarioEvent], file: String) {
        self.events = events
        self.file = file
    }
}

/// One event: when, to whom, what.
public struct ScenarioEvent: Sendable, Equatable {
    /// Seconds after the fleet started.
    public var at: Double
    public var selection: ScenarioSelection
    public var action: ScenarioAction
    /// Position in the list (it also seeds `select:`).
    public var index: Int
    public var line: Int?

    public init(at: Double, selection: ScenarioSelection, action: ScenarioAction, index: Int, line: Int? = nil) {
        self.at = at
        self.selection = selection
        self.action = action
        self.index = index
        self.line = line
    }
}

/// Which devices an event touches: those matching every filter given (`ids`, `template`,
/// `tag`; none: all), then `select` of them, drawn from the fleet seed and the event's position,
/// so the same seed selects the same devices.
public struct ScenarioSelection: Sendable, Equatable {
    public enum Amount: Sendable, Equatable {
        case all
        /// A share of the matching devices, 0–100, rounded to the nearest device.
        case percent(Double)
        /// This many of them (all when fewer match).
        case count(Int)
    }

    public var amount: Amount = .all
    public var ids: [String]?
    /// A template's id pattern as written, e.g. `sensor-{0000}`.
    public var template: String?
    public var tag: String?

    public init(amount: Amount = .all, ids: [String]? = nil, template: String? = nil, tag: String? = nil) {
        self.amount = amount
        self.ids = ids
        self.template = template
        self.tag = tag
    }

    /// The devices chosen, in id order.
    /// - Parameters:
    ///   - devices: the fleet's devices.
    ///   - seed: the fleet's seed; `event`: the event's position.
    public func choose(from devices: [DeviceSpec], seed: UInt64, event: Int) -> [String] {
        let wanted = ids.map(Set.init)
        var matching = devices.filter { device in
            (wanted.map { $0.contains(device.id) } ?? true)
                && (template.map { device.template == $0 } ?? true)
                && (tag.map { device.tags.contains($0) } ?? true)
        }.map(\.id)
        matching.sort()
        let take: Int
        switch amount {
        case .all: return matching
        case .percent(let p): take = Int((Double(matching.count) * p / 100).rounded())
        case .count(let n): take = min(n, matching.count)
        }
        var rng = Xoshiro256StarStar(seed: SensorSeed.derive(fleetSeed: seed, deviceID: "scenario", sensorName: "event-\(event)"))
        // A seeded Fisher–Yates over the sorted ids: the same seed, fleet and event pick the same devices.
        var pool = matching
        for i in stride(from: pool.count - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            pool.swapAt(i, j)
        }
        return Array(pool.prefix(take)).sorted()
    }

    /// "30% of tag basement", for the live output.
    public var description: String {
        var parts: [String] = []
        switch amount {
        case .all: if ids == nil && template == nil && tag == nil { parts.append("all") }
        case .percent(let p): parts.append("\(ScenarioAction.format(p))%")
        case .count(let n): parts.append("\(n)")
        }
        let of = parts.isEmpty ? "" : "of "
        if let ids { parts.append("\(of)ids \(ids.prefix(5).joined(separator: ","))\(ids.count > 5 ? ",…" : "")") }
        if let template { parts.append("\(of)template \(template)") }
        if let tag { parts.append("with tag \(tag)") }
        return parts.joined(separator: " ")
    }
}

/// What an event does to each chosen device.
public enum ScenarioAction: Sendable, Equatable {
    /// The network goes away: the socket is dropped without DISCONNECT (the broker sends the
    /// will), readings go on into the outbox, and the device does not reconnect for `seconds`.
    case disconnect(seconds: Double)
    /// The device reboots: will, offline for `seconds` (nil: `firmware.reboot_seconds`), then a
    /// birth with the boot count one higher; seq goes on.
    case reboot(seconds: Double?)
    /// A sensor fault (the keys of a sensor's `faults:` entry).
    case fault(ScenarioFault)
    /// Readings `factor` times as often; back to the device's interval after `seconds` (nil: for good).
    case rate(factor: Double, seconds: Double?)
    /// An OTA update to `version`.
    case ota(version: String)
    /// The device re-reads its certificate and key and renews its connection with them.
    case rotateCertificate
    /// The device's clock is off by `seconds` (its payloads' `ts`).
    case clockSkew(seconds: Double)

    /// The action's name as in the file.
    public var name: String {
        switch self {
        case .disconnect: "disconnect"
        case .reboot: "reboot"
        case .fault: "fault"
        case .rate: "rate"
        case .ota: "ota"
        case .rotateCertificate: "rotate_certificate"
        case .clockSkew: "clock_skew"
        }
    }

    /// "disconnect for 30 s", for the live output.
    public var description: String {
        switch self {
        case .disconnect(let s): "disconnect for \(Self.format(s)) s"
        case .reboot(let s): s.map { "reboot (offline \(Self.format($0)) s)" } ?? "reboot"
        case .fault(let f): "fault \(f.kind) on \(f.sensor)\(f.duration.map { " for \(Self.format($0)) s" } ?? "")"
        case .rate(let factor, let s): "rate ×\(Self.format(factor))\(s.map { " for \(Self.format($0)) s" } ?? "")"
        case .ota(let version): "ota to \(version)"
        case .rotateCertificate: "rotate_certificate"
        case .clockSkew(let s): "clock_skew \(s >= 0 ? "+" : "")\(Self.format(s)) s"
        }
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

/// A `fault` event: the same keys as an entry of a sensor's `faults:` list (`kind`, its
/// parameters, `duration`), plus the `sensor` it hits.
public struct ScenarioFault: Sendable, Equatable {
    public var kind: String
    public var sensor: String
    /// Seconds; nil: until the run ends.
    public var duration: Double?
    /// The kind's numeric parameters as written (`rate`, `amount`, `factor`, `stddev`, `value`, …).
    public var parameters: [String: Double]

    public init(kind: String, sensor: String, duration: Double?, parameters: [String: Double]) {
        self.kind = kind
        self.sensor = sensor
        self.duration = duration
        self.parameters = parameters
    }
}

/// What happened when an event ran, for the live output and the report.
public struct ScenarioRecord: Sendable, Equatable, Codable {
    /// Seconds after the start, as planned, and as it ran (one word each: the bench report
    /// converts keys to snake_case).
    public var at: Double
    public var ran: Double
    public var action: String
    public var detail: String
    public var devices: [String]
    /// Devices the action could not be carried out on, with why.
    public var refused: [String: String]?
}
