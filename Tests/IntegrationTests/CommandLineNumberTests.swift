import Foundation
import SensorFleetTesting
import Testing
@testable import SensorFleetCore

/// Extreme and non-finite values as typed on a command line.
let cliExtremeValues = [
    "nan", "-nan", "inf", "-inf", "infinity", "-0", "0", "1e308", "-1e308", "1e-308", "4.9e-324", "1e400",
    "99999999999999999999999", "9223372036854775807", "-9223372036854775808", "0.5", "1", "5", "60", "-1",
]

/// Options of each command that take a value that is not a number (so not in ``OptionRanges``).
// `--metrics-listen ADDR:PORT`: its port is checked by `MetricsListenAddress` (MetricsServerTests → addresses).
/// `--shards N` belongs with `--shard auto` and is checked with it, by `Shard.parse` (1…100,000,
/// with its own error naming the flag or variable), like the other shard and start options.
private let textOptions: [String: Set<String>] = [
    "run": ["--broker", "--report", "--state-dir", "--log-level", "--metrics-listen", "--shard", "--shards", "--start-at", "--run-id", "--scenario"],
    "bench": ["--broker", "--bind", "--report", "--html", "--log-level", "--metrics-listen", "--shard", "--shards", "--start-at", "--run-id",
              "--payload-format", "--payload-template", "--payload-template-file", "--influx-measurement", "--protocol",
              "--content-type", "--user-property", "--scenario"],
    "agent": ["--fleet", "--key", "--state-dir", "--log-level", "--metrics-listen"],
    "provision": ["--prefix", "--shard", "--shards"],
]

/// Runs the built binary with `arguments`; its exit code (128 + signal when it died of one) and
/// output. Killed after `timeout` seconds, which fails the caller's expectations.
private func runBinary(_ arguments: [String], timeout: Double = 30) throws -> (code: Int32, output: String) {
    let dir = try TempDir("cli")
    defer { dir.remove() }
    let (process, output) = try launchSensorfleet(arguments, in: dir.path)
    let code = process.wait(timeout: timeout)
    return (code, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
}

@Suite("Numbers on the command line: every numeric option of every command is range-checked", .serialized)
struct CommandLineNumberTests {
    @Test("every numeric option in --help is in OptionRanges (a new option cannot skip the check)")
    func everyOptionHasARange() throws {
        for table in OptionRanges.all {
            let (code, help) = try runBinary([table.command, "--help"])
            #expect(code == 0, "\(help)")
            let regex = try NSRegularExpression(pattern: "--([a-z][a-z-]*) <")
            let options = Set(regex.matches(in: help, range: NSRange(help.startIndex..., in: help)).map {
                "--" + (help as NSString).substring(with: $0.range(at: 1))
            })
            let numeric = Set(table.options.map(\.flag))
            #expect(options == numeric.union(textOptions[table.command] ?? []),
                    "\(table.command): options in --help \(options.sorted()), in the tables \(numeric.sorted())")
        }
    }

    @Test("extreme and non-finite values for every numeric option: exit 64 naming the option and its range, or accepted in range — never a crash or a hang")
    func everyOptionFuzzed() throws {
        var runs = 0
        for table in OptionRanges.all {
            for (flag, range) in table.options {
                for text in cliExtremeValues {
                    let parsed: Double? = range.wholeNumber ? Int(text).map(Double.init) : Double(text)
                    let inRange = parsed.map(range.contains) ?? false
                    // A folder that cannot exist: a command that accepts the value stops at it, exit 1.
                    let (code, output) = try runBinary([table.command, "/dev/null/fleet", "\(flag)=\(text)"])
                    runs += 1
                    #expect(code < 128 && !output.contains("Fatal error") && !output.contains("Stack dump")
                                && !output.contains("Backtrace"),
                            "\(table.command) \(flag)=\(text) crashed (\(code)): \(output.suffix(600))")
                    if inRange {
                        #expect(code == 1, "\(table.command) \(flag)=\(text) is in range: expected the folder error, got \(code): \(output.suffix(400))")
                    } else {
                        #expect(code == 64, "\(table.command) \(flag)=\(text): expected a usage error, got \(code): \(output.suffix(400))")
                        #expect(output.contains(flag), "\(table.command) \(flag)=\(text): \(output.suffix(400))")
                        if parsed != nil {
                            #expect(output.contains("expected \(range.expected)"), "\(table.command) \(flag)=\(text): \(output.suffix(400))")
                        }
                    }
                }
            }
        }
        print("numbers: \(runs) command lines with extreme values, no crash")
    }

    @Test("the issue's cases: run --duration nan, --connect-rate nan, --connect-timeout nan, bench --duration nan refuse at once")
    func quotedCases() throws {
        for arguments in [["run", "--duration", "nan"], ["run", "--connect-rate", "nan"], ["run", "--connect-timeout", "nan"],
                          ["bench", "--duration", "nan"], ["bench", "--connect-rate", "1e-300"], ["agent", "--watch-interval", "inf"]] {
            let start = Date()
            let (code, output) = try runBinary(arguments + ["/dev/null/fleet"], timeout: 20)
            #expect(code == 64, "\(arguments): \(code) \(output)")
            #expect(output.contains("Error: \(arguments[1]): expected"), "\(arguments): \(output)")
            #expect(output.contains("fix: give \(arguments[1]) a finite number"), "\(arguments): \(output)")
            #expect(Date().timeIntervalSince(start) < 10)
        }
    }
}
