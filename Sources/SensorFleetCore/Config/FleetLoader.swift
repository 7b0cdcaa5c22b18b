#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Loads a fleet folder (`fleet.yaml` plus one `<id>/device.yaml` per device) into a ``FleetSpec``
/// and checks everything a run needs, collecting every problem instead of stopping at the first.
///
/// The format is documented in `Devices/README.md`.
public enum FleetLoader {
    /// Reads `directory/fleet.yaml` and every subfolder holding a `device.yaml`, applies defaults,
    /// and checks everything, including certificates and keys.
    ///
    /// - Parameters:
    ///   - directory: The fleet folder, absolute or relative to the current directory. Issues name
    ///     files by joining this argument with the file's relative path, as the user typed it.
    ///   - now: The moment certificate validity is checked against.
    /// - Returns: The fleet, with absolute paths and devices sorted by id, and any warnings
    ///   (certificates expiring within 30 days, hostname verification turned off).
    /// - Throws: ``FleetValidationError`` with every problem found.
    ///   - credentialsOf: the devices whose certificates and keys are checked, from the count of
    ///     the fleet's devices (in id order) to their positions; nil: all. A shard checks only its
    ///     own (``Shard/positions(of:firstDevices:)``): its pod made only those with
    ///     `provision --shard`. The spec still lists every device.
    public static func load(directory: String, now: Date = Date(),
                            credentialsOf: ((Int) -> Range<Int>)? = nil) throws(FleetValidationError) -> LoadedFleet {
        let log = IssueLog()
        let parsed = parse(directory: directory, log: log)
        if var checked = parsed {
            if let credentialsOf { checked.devices = Array(checked.devices[credentialsOf(checked.devices.count)]) }
            CredentialChecker(log: log, now: now).check(checked)
        }
        guard let parsed, log.errors.isEmpty else {
            throw FleetValidationError(issues: IssueLog.ordered(log.errors))
        }
        return LoadedFleet(spec: parsed.spec, warnings: IssueLog.ordered(log.warnings))
    }

    /// Same YAML parsing and checks as ``load(directory:now:)``, without touching certificate or
    /// key files (for `provision`, which creates them).
    ///
    /// - Parameter directory: The fleet folder, absolute or relative to the current directory.
    /// - Throws: ``FleetValidationError`` with every problem found.
    public static func loadWithoutCredentials(directory: String) throws(FleetValidationError) -> FleetSpec {
        let log = IssueLog()
        let parsed = parse(directory: directory, log: log)
        guard let parsed, log.errors.isEmpty else {
            throw FleetValidationError(issues: IssueLog.ordered(log.errors))
        }
        return parsed.spec
    }

    /// For `provision`, which makes the certificates and keys: the same parsing and checks as
    /// ``loadWithoutCredentials(directory:)``, except that a missing fleet folder, a missing
    /// fleet.yaml and a fleet without devices are fine (provision creates them).
    static func parseForProvisioning(directory: String) throws(FleetValidationError) -> ParsedFleet {
        let log = IssueLog()
        let parsed = parse(directory: directory, log: log, forProvisioning: true)
        guard let parsed, log.errors.isEmpty else {
            throw FleetValidationError(issues: IssueLog.ordered(log.errors))
        }
        return parsed
    }

    // MARK: - Whole folder

    /// Everything read from the YAML files, with what the credential checks need to point at lines.
    struct ParsedFleet {
        var spec: FleetSpec
        var settings: FleetSettings
        var devices: [ParsedDevice]
        /// fleet.yaml's `templates:`, whose devices are also in `devices`.
        var templates: [TemplateSpec]
    }

    /// - Parameters:
    ///   - onlyDevice: read only this device folder, wherever it is, and no templates (the agent
    ///     runs exactly the device it is given).
    ///   - forProvisioning: a missing folder, a missing fleet.yaml and no devices are no problem.
    static func parse(directory: String, log: IssueLog, onlyDevice: FleetLocation? = nil,
                      forProvisioning: Bool = false) -> ParsedFleet? {
        let location = FleetLocation(argument: directory)
        let isDirectory = FileInfo.isFolder(location.absolute)
        let exists = isDirectory != nil
        if forProvisioning && !exists {
            let settings = FleetSettings(location: location)
            let spec = FleetSpec(directory: location.absolute, broker: settings.broker, seed: settings.seed,
                                 connectRate: settings.connectRate, outbox: settings.outbox, devices: [])
            return ParsedFleet(spec: spec, settings: settings, devices: [], templates: [])
        }
        guard exists, isDirectory == true
        else {
            log.error(location.displayRoot, "the fleet folder does not exist (looked for \(location.absolute))",
                      fix: "pass the folder that holds fleet.yaml and one subfolder per device, e.g. `Devices`")
            return nil
        }

        let fleetFile = location.display("fleet.yaml")
        var settings = FleetSettings(location: location)
        var templateDevices: [ParsedDevice] = []
        var templates: [TemplateSpec] = []
        if FileManager.default.fileExists(atPath: location.absolute("fleet.yaml")) {
            if let root = YAMLFile.readMapping(path: location.absolute("fleet.yaml"), displayPath: fleetFile,
                                               log: log, whatItHolds: "`broker:`, `seed:`, `defaults:` …",
                                               allowEmpty: true) {
                settings.read(root)
                if onlyDevice == nil {
                    (templateDevices, templates) = TemplateParser(location: location, defaults: settings.defaults, log: log).parse(root)
                }
            }
        } else if !forProvisioning {
            log.error(fleetFile, "fleet.yaml is missing from the fleet folder",
                      fix: "create \(fleetFile) with at least `broker:` and its `host:` and `port:` "
                          + "(see Devices/README.md)")
        }

        let devices: [ParsedDevice]
        let folders: [String]
        if let onlyDevice {
            let parent = onlyDevice.parent
            folders = [onlyDevice.name]
            devices = DeviceParser(location: parent, folder: onlyDevice.name, defaults: settings.defaults, log: log)
                .parse().map { [$0] } ?? []
        } else {
            folders = deviceFolders(location, log: log)
            devices = folders.compactMap { folder in
                DeviceParser(location: location, folder: folder, defaults: settings.defaults, log: log).parse()
            } + templateDevices
        }
        if folders.isEmpty && templateDevices.isEmpty && !forProvisioning {
            log.error(location.displayRoot, "the fleet has no devices: no subfolder holds a device.yaml",
                      fix: "create \(location.display("<id>/device.yaml")) for each device, "
                          + "e.g. \(location.display("thermostat-001/device.yaml")) (see Devices/README.md)")
        }
        reportDuplicateIDs(devices, log: log)
        var devicesChecked = devices
        if let profile = settings.profile {
            ProfileRules.checkDevices(profile, broker: settings.broker, devices: &devicesChecked, log: log)
        }

        let sorted = devicesChecked.sorted { ($0.spec.id, $0.file) < ($1.spec.id, $1.file) }
        var spec = FleetSpec(
            directory: location.absolute, broker: settings.broker, seed: settings.seed,
            connectRate: settings.connectRate, outbox: settings.outbox,
            devices: sorted.map(\.spec), profile: settings.profile)
        spec.behaviour = settings.behaviour
        spec.templatePatterns = templates.map(\.pattern)
        if let events = settings.scenario {
            if onlyDevice == nil {
                ScenarioParser.check(events, devices: spec.devices, templates: spec.templatePatterns, file: fleetFile, log: log)
            }
            spec.scenario = ScenarioSpec(events: events, file: fleetFile)
        }
        return ParsedFleet(spec: spec, settings: settings, devices: sorted, templates: templates)
    }

    /// Subfolders holding a `device.yaml`, by name; hidden entries are skipped, and so are
    /// plain files and folders without a `device.yaml`. Nothing else disappears silently: a
    /// folder that cannot be searched, a broken symbolic link, or a `device.yaml` that is not a
    /// readable file is an error naming it.
    static func deviceFolders(_ location: FleetLocation, log: IssueLog) -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: location.absolute)
        } catch {
            log.error(location.displayRoot, "cannot list the fleet folder: \(error)",
                      fix: "make \(location.displayRoot) readable")
            return []
        }
        return names.sorted().filter { name in
            guard !name.hasPrefix(".") else { return false }
            return EntryCheck.isDeviceFolder(location: location, name: name, log: log)
        }
    }

    /// One issue for each device whose id another device already has. A device that takes its id
    /// from its folder name is the one kept; the others are told to change their `id:`.
    static func reportDuplicateIDs(_ devices: [ParsedDevice], log: IssueLog) {
        let groups = Dictionary(grouping: devices, by: \.spec.id).filter { $0.value.count > 1 }
        for id in groups.keys.sorted() {
            guard let group = groups[id]?.sorted(by: { ($0.idLine != nil ? 1 : 0, $0.file) < ($1.idLine != nil ? 1 : 0, $1.file) }),
                  let first = group.first
            else { continue }
            let how = { (d: ParsedDevice) in d.idLine == nil ? " (from its folder name)" : "" }
            for device in group.dropFirst() {
                log.error(device.file, line: device.idLine, field: "id",
                          "device id `\(id)`\(how(device)) is also the id of \(first.file)\(how(first)); "
                              + "the broker would see two clients with one identity",
                          fix: "give every device its own id: change `id:` in \(device.file) or in \(first.file)")
            }
        }
    }
}
