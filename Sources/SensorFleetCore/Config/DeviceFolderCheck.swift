#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decides whether an entry of the fleet folder is a device folder, and reports the entries
/// that might be one but cannot be read, so that a device never disappears silently.
enum EntryCheck {
    /// The mode of a path, or the errno of `stat`/`lstat`.
    private enum Stat {
        case success(mode_t)
        case failure(Int32)
    }

    /// `stat` (following links) or `lstat`.
    private static func mode(_ path: String, follow: Bool) -> Stat {
        var info = stat()
        let rc = follow ? stat(path, &info) : lstat(path, &info)
        return rc == 0 ? .success(info.st_mode) : .failure(errno)
    }

    private static func isDirectory(_ mode: mode_t) -> Bool { mode & S_IFMT == S_IFDIR }
    private static func isLink(_ mode: mode_t) -> Bool { mode & S_IFMT == S_IFLNK }
    private static func isRegular(_ mode: mode_t) -> Bool { mode & S_IFMT == S_IFREG }

    private static func text(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// Where the symbolic link at `path` points, as written in the link.
    static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlink(path, &buffer, 4096)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether `name` in the fleet folder is a device folder (a folder with a readable
    /// `device.yaml` file). Logs an error for an entry that cannot be told apart: a broken
    /// link, a folder that cannot be searched, a `device.yaml` that is a folder, a broken link,
    /// or unreadable.
    static func isDeviceFolder(location: FleetLocation, name: String, log: IssueLog) -> Bool {
        let path = location.absolute(name)
        let display = location.display(name)
        guard case .success(let own) = mode(path, follow: false) else { return false }
        let followed = mode(path, follow: true)
        if isLink(own), case .failure(let code) = followed {
            let target = linkTarget(path) ?? "?"
            log.error(display, "\(display) is a symbolic link to \(target), which cannot be followed (\(text(code))); "
                          + "if it is a device folder, that device is missing",
                      fix: "restore \(target), or point the link at the device folder, or remove the link \(display)")
            return false
        }
        guard case .success(let folderMode) = followed, isDirectory(folderMode) else { return false }

        let yamlPath = path + "/device.yaml"
        let yamlDisplay = location.display(name, "device.yaml")
        switch mode(yamlPath, follow: false) {
        case .failure(ENOENT), .failure(ENOTDIR):
            // A folder without device.yaml (broker/, shared identities): not a device.
            return false
        case .failure(let code):
            log.error(display, "cannot look into the folder \(display) (\(text(code))): if it is a device folder, "
                          + "that device is missing",
                      fix: "make the folder readable and searchable by this user, e.g. `chmod 755 \(display)`, "
                          + "or move it out of the fleet folder")
            return false
        case .success(let yamlOwn):
            switch mode(yamlPath, follow: true) {
            case .failure(let code):
                let target = isLink(yamlOwn) ? " (a symbolic link to \(linkTarget(yamlPath) ?? "?"))" : ""
                log.error(yamlDisplay, "\(yamlDisplay)\(target) cannot be opened: \(text(code))",
                          fix: isLink(yamlOwn) ? "restore the file the link points to, or replace the link with the device's device.yaml"
                              : "make \(yamlDisplay) readable")
                return false
            case .success(let yamlMode) where isDirectory(yamlMode):
                log.error(yamlDisplay, "\(yamlDisplay) is a folder, not a file",
                          fix: "replace the folder \(yamlDisplay) with the device's device.yaml file")
                return false
            case .success(let yamlMode) where !isRegular(yamlMode):
                log.error(yamlDisplay, "\(yamlDisplay) is not a regular file (a device, a FIFO or a socket)",
                          fix: "replace \(yamlDisplay) with the device's device.yaml file")
                return false
            case .success:
                if access(yamlPath, R_OK) != 0 {
                    let code = errno
                    log.error(yamlDisplay, "cannot read \(yamlDisplay): \(text(code))",
                              fix: "make it readable by this user, e.g. `chmod 644 \(yamlDisplay)`")
                    return false
                }
                return true
            }
        }
    }
}
