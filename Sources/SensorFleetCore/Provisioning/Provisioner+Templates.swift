import Crypto
import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
import X509

extension Provisioner {
    /// Keys and certificates for the devices of fleet.yaml's `templates:` (`<id>/cert.pem`,
    /// `<id>/key.pem`), or one shared identity per template with `shared_identity: true`.
    /// Key generation and signing run on every core; existing keys are kept as for any device.
    static func provisionTemplates(
        _ templates: [TemplateSpec], dir: String, authority: FleetAuthority, options: ProvisionOptions, now: Date,
        owned: Set<String>? = nil, result: inout ProvisionResult
    ) throws {
        for template in templates {
            let started = Date()
            if template.sharedIdentity {
                let folder = "\(dir)/\(template.sharedFolder)"
                let cn = template.sharedFolder
                try AtomicFile.makeDirectory(folder)
                _ = try ensurePair(
                    certPath: "\(folder)/cert.pem", keyPath: "\(folder)/key.pem",
                    label: "shared identity \(cn) of \(template.count) devices (\(template.pattern))",
                    force: options.force, result: &result,
                    problem: { cert, key in
                        FleetPKI.problem(with: cert, key: key, authority: authority, commonName: cn, now: now)
                    },
                    issue: { key in
                        try FleetPKI.makeDevice(id: cn, key: key, authority: authority, now: now, validityDays: options.validityDays)
                    })
                continue
            }
            let ids = (0..<template.count).map(template.id).filter { owned?.contains($0) != false }
            if ids.isEmpty { continue }
            let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, ids.count / 16))
            let outcome = Mutex<(created: Int, kept: Int, lines: [String], error: Error?)>((0, 0, [], nil))
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                var local = ProvisionResult()
                var failure: Error?
                var index = worker
                while index < ids.count {
                    let id = ids[index]
                    let folder = "\(dir)/\(id)"
                    do {
                        try AtomicFile.makeDirectory(folder)
                        _ = try ensurePair(
                            certPath: "\(folder)/cert.pem", keyPath: "\(folder)/key.pem", label: "device \(id)",
                            force: options.force, result: &local,
                            problem: { cert, key in
                                FleetPKI.problem(with: cert, key: key, authority: authority, commonName: id, now: now)
                            },
                            issue: { key in
                                try FleetPKI.makeDevice(
                                    id: id, key: key, authority: authority, now: now, validityDays: options.validityDays)
                            })
                    } catch {
                        failure = error
                        break
                    }
                    index += workers
                }
                let done = local
                let failed = failure
                outcome.withLock {
                    $0.created += done.created.count
                    $0.kept += done.skipped.count
                    // Reissues say why; plain "new" lines are summed up below.
                    $0.lines += done.created.filter { $0.contains("reissued") || $0.contains("regenerated") || $0.contains("key was missing") }
                    if $0.error == nil, let failed { $0.error = failed }
                }
            }
            let summary = outcome.withLock { $0 }
            if let error = summary.error { throw error }
            let seconds = Date().timeIntervalSince(started)
            result.created += summary.lines.prefix(20)
            if summary.lines.count > 20 { result.created.append("… and \(summary.lines.count - 20) more reissued") }
            result.created.append(
                "\(ids.count) devices of template \(template.pattern) (\(ids.first!)…\(ids.last!)): "
                    + "\(summary.created) new or renewed, \(summary.kept) kept, in \(String(cFormat: "%.1f", seconds)) s on \(workers) thread\(workers == 1 ? "" : "s")")
        }
    }
}
