#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `username:`, `password_file:` and `password:` of device.yaml, `defaults:` or a template: the
/// MQTT user name and password a device sends in CONNECT, only when asked for by name.
struct LoginFields {
    /// The user name, `{id}` not yet replaced.
    var username: String?
    var password: MQTTPassword?

    static let keys = ["username", "password_file", "password"]

    /// - Parameter resolve: a path written in this file → (absolute, as the user sees it).
    static func read(_ map: MappingReader, resolve: (String) -> (absolute: String, display: String)) -> LoginFields {
        var fields = LoginFields()
        let usernameFix = "set \(map.field("username")) to the MQTT user name, e.g. \"{id}\" (the device id)"
        if let username = map.string("username", expected: "an MQTT user name such as \"{id}\"", fix: usernameFix) {
            if username.isEmpty || username.utf8.count > 65_535 || username.contains("\u{0}") {
                map.problem("username", "expected a user name of 1 to 65,535 bytes without NUL, got \"\(SettingText.clipped(username))\"",
                            fix: usernameFix)
            } else {
                fields.username = username
            }
        }
        let fileFix = "set \(map.field("password_file")) to a file holding the password on its first line "
            + "(e.g. password.txt beside this file, chmod 600)"
        if let path = map.string("password_file", expected: "the path of a file holding the password", fix: fileFix) {
            if path.isEmpty {
                map.problem("password_file", "expected the path of a file holding the password, got an empty text", fix: fileFix)
            } else {
                let resolved = resolve(path)
                fields.password = readPasswordFile(resolved.absolute, display: resolved.display, map: map, fix: fileFix)
            }
        }
        if map.has("password") {
            if map.has("password_file") {
                map.problem("password", "`password` and `password_file` are both set",
                            fix: "keep \(map.field("password_file")) and remove \(map.field("password"))")
            } else if let password = map.string("password", expected: "the MQTT password as text",
                                                fix: "set \(map.field("password_file")) to a file holding the password instead") {
                if password.isEmpty {
                    map.problem("password", "the password is empty",
                                fix: "set \(map.field("password_file")) to a file holding the password, or remove \(map.field("password"))")
                } else {
                    fields.password = MQTTPassword(password)
                    map.log.warning(map.file, line: map.line(of: "password"), field: map.field("password"),
                                    "WARNING: a password is written in clear in this file: anyone who can read it (or a copy, "
                                        + "a backup, a repository) can connect as this device",
                                    fix: "move the password into a file only its owner can read (chmod 600) and name it with "
                                        + "\(map.field("password_file")) instead")
                }
            }
        }
        return fields
    }

    /// The first line of `path` (a trailing CR/LF removed); warns when others may read it.
    private static func readPasswordFile(_ path: String, display: String, map: MappingReader, fix: String) -> MQTTPassword? {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "it cannot be read" : "it does not exist"
            map.problem("password_file", "cannot read the password file \(display): \(reason)", fix: fix)
            return nil
        }
        let text = String(decoding: data, as: UTF8.self)
        let firstLine = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).first
            .map { $0.trimming(where: { $0 == "\r" }) } ?? ""
        guard !firstLine.isEmpty else {
            map.problem("password_file", "the password file \(display) is empty (the password is its first line)", fix: fix)
            return nil
        }
        if let mode = FileInfo.permissions(path, followingLinks: false), mode & 0o077 != 0 {
            map.log.warning(map.file, line: map.line(of: "password_file"), field: map.field("password_file"),
                            "the password file \(display) can be read by other users (mode \(String(mode, radix: 8)))",
                            fix: "chmod 600 \(display)")
        }
        return MQTTPassword(firstLine)
    }
}

extension LoginFields {
    /// These fields over fleet.yaml's `defaults:`, `{id}` replaced when `id` is given; a password
    /// without a user name is an error (MQTT sends no password without one).
    func merged(over defaults: LoginFields, id: String?, file: String, log: IssueLog) -> LoginFields {
        var merged = LoginFields(username: username ?? defaults.username, password: password ?? defaults.password)
        if merged.password != nil && merged.username == nil {
            log.error(file, field: "username", "a password is set but no user name: MQTT sends no password without one",
                      fix: "set `username:` (e.g. \"{id}\") here or under `defaults:` in fleet.yaml")
            merged.password = nil
        }
        if let id { merged = merged.replacingID(id) }
        return merged
    }

    /// `{id}` in the user name replaced by the device id.
    func replacingID(_ id: String) -> LoginFields {
        LoginFields(username: username?.replacing("{id}", with: id), password: password)
    }
}
