#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Loads the one device an agent runs.
///
/// Layout: the device folder (`device.yaml`, `cert.pem`, `key.pem`) sits inside a fleet folder
/// whose `fleet.yaml` names the broker and CA (as `provision` and `Scripts/install-agent` make
/// it: `/etc/sensorfleet/fleet.yaml`, `/etc/sensorfleet/ca.pem`, `/etc/sensorfleet/<id>/`).
/// Only that device is read and checked, from wherever it is (also with `--fleet` elsewhere);
/// other device folders beside it and the `templates:` of fleet.yaml are ignored.
public enum AgentLoader {
    /// - Parameters:
    ///   - deviceDirectory: the device folder.
    ///   - fleetDirectory: the folder with fleet.yaml; nil for the device folder's parent.
    ///   - keyFile: the private key to use instead of device.yaml's `key:` (systemd's
    ///     `LoadCredential` puts it in `$CREDENTIALS_DIRECTORY/key.pem`).
    ///   - now: the moment certificates are checked against.
    public static func load(deviceDirectory: String, fleetDirectory: String? = nil, keyFile: String? = nil,
                            now: Date = Date()) throws(FleetValidationError) -> LoadedFleet {
        let device = FleetLocation(argument: deviceDirectory)
        let fleetArgument = fleetDirectory ?? PathText.deletingLastComponent(device.absolute)
        let log = IssueLog()
        let folderName = device.name
        guard FileManager.default.fileExists(atPath: device.absolute + "/device.yaml") else {
            throw FleetValidationError(issues: [FleetIssue(
                file: device.display("device.yaml"),
                problem: "the device folder has no device.yaml (looked in \(device.absolute))",
                fix: "pass the device's folder (the one holding device.yaml, cert.pem and key.pem), e.g. /etc/sensorfleet/\(folderName)")])
        }
        // A device.yaml that is a folder, a FIFO or unreadable is named, never read (a FIFO would block).
        guard EntryCheck.isDeviceFolder(location: device.parent, name: device.name, log: log) else {
            throw FleetValidationError(issues: IssueLog.ordered(log.errors))
        }
        guard var parsed = FleetLoader.parse(directory: fleetArgument, log: log, onlyDevice: device) else {
            throw FleetValidationError(issues: IssueLog.ordered(log.errors))
        }
        if let keyFile {
            let absolute = FleetLocation(argument: keyFile).absolute
            for index in parsed.devices.indices {
                parsed.devices[index].spec.keyFile = absolute
                parsed.devices[index].keyDisplay = keyFile
                parsed.devices[index].keyLine = nil
            }
            parsed.spec.devices = parsed.devices.map(\.spec)
        }
        if log.errors.isEmpty { CredentialChecker(log: log, now: now).check(parsed) }
        guard log.errors.isEmpty else { throw FleetValidationError(issues: IssueLog.ordered(log.errors)) }
        return LoadedFleet(spec: parsed.spec, warnings: IssueLog.ordered(log.warnings))
    }
}
