import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SensorFleetCore

/// `--shard I/N` / `--shard auto` and `--shards N`, shared by run, bench and provision.
struct ShardOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Only shard I of N of the fleet's devices (in id order, numbered from 0), or `auto`: I from $JOB_COMPLETION_INDEX (Kubernetes Indexed Job), N from --shards or $SENSORFLEET_SHARDS.", valueName: "I/N|auto"))
    var shard: String?

    @Option(help: "With --shard auto: the number of shards (default: $SENSORFLEET_SHARDS).")
    var shards: Int?

    /// A bad `--shard`, `--shards` or shard variable is a usage error before anything runs.
    func validate() throws { _ = try resolve() }

    /// The shard, `.whole` without `--shard`.
    func resolve() throws -> Shard {
        guard let shard else {
            if shards != nil { throw ValidationError("--shards: only with --shard auto") }
            return .whole
        }
        do { return try Shard.parse(shard, shards: shards, environment: ProcessInfo.processInfo.environment) }
        catch { throw ValidationError(error.description) }
    }
}

/// `--start-at` and `--run-id`, shared by run and bench.
struct StartOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Wait until this time, then ramp up (Unix seconds or RFC 3339, e.g. 2026-11-26T02:40:00Z); a process that starts later ramps at once and says how late.", valueName: "time"))
    var startAt: String?

    @Option(help: "The run id written in the reports (default: run-<start time, UTC>, from --start-at when given, so every shard of a run agrees).")
    var runId: String?

    func resolve() throws -> StartTime? {
        guard let startAt else { return nil }
        do { return try StartTime.parse(startAt) } catch { throw ValidationError(error.description) }
    }
}
