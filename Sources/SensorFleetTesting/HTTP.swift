import Foundation

/// An HTTP answer as a plain client saw it.
public struct HTTPAnswer: Sendable {
    public var status: Int
    public var body: String
}

/// Sends `request` (raw bytes, e.g. "GET /metrics HTTP/1.1\r\n\r\n") to 127.0.0.1:port over a
/// plain blocking socket and reads until the server closes, for at most `timeout` seconds. Nil
/// when it could not connect or no whole answer came in time.
public func rawHTTP(port: Int, _ request: String, timeout: Double = 5) -> HTTPAnswer? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    guard connectLoopback(fd, port: port) else { return nil }
    return exchange(fd, request, timeout: timeout)
}

/// `GET path` on 127.0.0.1:port.
public func httpGet(port: Int, _ path: String, timeout: Double = 5) -> HTTPAnswer? {
    rawHTTP(port: port, "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", timeout: timeout)
}

/// One sample of a Prometheus text exposition.
public struct PrometheusSample: Sendable, Equatable {
    public var name: String
    public var labels: [String: String]
    public var value: Double
}

/// A Prometheus text exposition, parsed as a scraper reads it: `# TYPE` and `# HELP` lines and
/// samples (`name{label="value",…} number`).
public struct PrometheusText: Sendable {
    public var types: [String: String] = [:]
    public var helps: [String: String] = [:]
    public var samples: [PrometheusSample] = []

    public init(_ text: String) throws {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") || line.hasPrefix("# HELP ") {
                let parts = line.split(separator: " ", maxSplits: 3)
                guard parts.count >= 3 else { throw TestFailure("bad comment line: \(line)") }
                if parts[1] == "TYPE" { types[String(parts[2])] = parts.count > 3 ? String(parts[3]) : "" }
                else { helps[String(parts[2])] = parts.count > 3 ? String(parts[3]) : "" }
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                throw TestFailure("bad sample line: \(line)")
            }
            let series = line[..<space]
            var labels: [String: String] = [:]
            let name: String
            if let brace = series.firstIndex(of: "{") {
                name = String(series[..<brace])
                guard series.hasSuffix("}") else { throw TestFailure("bad labels: \(line)") }
                var rest = series[series.index(after: brace)..<series.index(before: series.endIndex)]
                while !rest.isEmpty {
                    guard let eq = rest.firstIndex(of: "="), rest[rest.index(after: eq)] == "\"" else { throw TestFailure("bad labels: \(line)") }
                    let key = String(rest[..<eq])
                    var i = rest.index(eq, offsetBy: 2)
                    var text = ""
                    while rest[i] != "\"" {
                        if rest[i] == "\\" { i = rest.index(after: i) }
                        text.append(rest[i])
                        i = rest.index(after: i)
                    }
                    labels[key] = text
                    rest = rest[rest.index(after: i)...]
                    if rest.hasPrefix(",") { rest = rest.dropFirst() }
                }
            } else {
                name = String(series)
            }
            samples.append(PrometheusSample(name: name, labels: labels, value: value))
        }
    }

    /// The value of `name` whose labels include `labels`; nil when there is none.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { key, value in sample.labels[key] == value } }?.value
    }
}

/// Sends `request` on the connected socket `fd` and reads until the server closes, for at most
/// `timeout` seconds; nil unless a whole answer (all Content-Length bytes) came in time.
func exchange(_ fd: Int32, _ request: String, timeout: Double) -> HTTPAnswer? {
    let bytes = Array(request.utf8)
    guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else { return nil }
    let deadline = Date().addingTimeInterval(timeout)
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    while Date() < deadline {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        received.append(contentsOf: buffer[0..<n])
    }
    let text = String(decoding: received, as: UTF8.self)
    guard let headEnd = text.range(of: "\r\n\r\n"),
          let status = Int(text.split(separator: " ", maxSplits: 2).dropFirst().first ?? "") else { return nil }
    let body = String(text[headEnd.upperBound...])
    // Whole only when Content-Length bytes arrived.
    if let line = text[..<headEnd.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
       let length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)), body.utf8.count != length {
        return nil
    }
    return HTTPAnswer(status: status, body: body)
}
