// What the command line's protocol and payload choices (`--protocol`, the MQTT 5 properties,
// `--payload-format`) do to the fleet a bench runs: checked against the fleet's profile and the
// verifier, then applied to every device. Kept apart from the run itself (BenchRunner.swift).
extension BenchRunner {
    /// `--protocol` and the MQTT 5 properties of the command line, applied to every device.
    static func applyProtocol(_ options: BenchOptions, to spec: inout FleetSpec) throws(FleetStartError) {
        if let version = options.protocolVersion { spec.broker.protocolVersion = version }
        if let profile = spec.profile {
            let limits = profile.limits
            if options.qos > limits.maxQoS {
                throw FleetStartError(description: "--qos \(options.qos): fleet.yaml's profile \(profile.rawValue) takes QoS 0 to \(limits.maxQoS); the service would close the connection. Pass --qos \(limits.maxQoS)")
            }
            if !limits.protocols.contains(spec.broker.protocolVersion) {
                throw FleetStartError(description: "--protocol \(spec.broker.protocolVersion.rawValue): fleet.yaml's profile \(profile.rawValue) speaks MQTT \(limits.protocols.map(\.rawValue).joined(separator: " or ")) only")
            }
        }
        guard let properties = options.telemetryProperties else { return }
        if spec.broker.protocolVersion != .v5 {
            throw FleetStartError(description: "--message-expiry, --content-type, --user-property and --topic-alias are MQTT 5 properties, and this bench speaks MQTT \(spec.broker.protocolVersion.rawValue): add --protocol 5 (or set broker.protocol: \"5\" in fleet.yaml)")
        }
        if properties.topicAlias && options.qos > 0 {
            throw FleetStartError(description: "--topic-alias is used at --qos 0 only: at QoS \(options.qos) libmosquitto re-sends an unacknowledged message after a reconnect with the alias only, which the broker does not know on the new connection")
        }
        for i in spec.devices.indices {
            var own = properties
            own.userProperties = own.userProperties.map { .init(name: $0.name, value: $0.value.replacing("{id}", with: spec.devices[i].id)) }
            spec.devices[i].telemetryProperties = own
        }
    }

    /// Each device's payload format in this bench; refuses a format the verifier cannot read
    /// (when verifying) and a `--payload-format template` whose placeholders a device lacks.
    static func payloadFormats(_ options: BenchOptions, _ spec: FleetSpec) throws(FleetStartError) -> [PayloadFormat] {
        if case .template(let template)? = options.payloadFormat {
            for device in spec.devices {
                let sensors = device.sensors.map(\.name)
                if let unknown = template.unknownPlaceholders(sensors: sensors).first {
                    let known = (PayloadTemplate.builtInNames + sensors).map { "{{\($0)}}" }.joined(separator: ", ")
                    throw FleetStartError(description: "--payload-template: unknown placeholder {{\(unknown.name)}} (line \(unknown.line)) for device \(device.id); known: \(known)")
                }
            }
        }
        let formats = spec.devices.map { options.payloadFormat ?? $0.payload }
        if options.verify {
            for (device, format) in zip(spec.devices, formats) {
                if let problem = format.verificationProblem {
                    let whose = options.payloadFormat != nil ? "--payload-template" : "the payload template of device \(device.id)"
                    throw FleetStartError(description: "\(whose): \(problem); or pass --no-verify to measure publishing only")
                }
            }
        }
        return formats
    }
}
