import Testing

@testable import SensorFleetCore

/// The bench report's hint that connect times sit at Linux's delayed-ACK interval (a broker with
/// Nagle on), on synthetic connect times.
@Suite("Load test: connect times clustered at the delayed-ACK interval")
struct DelayedAckHintTests {
    /// A histogram of connect times (µs), as the bench records them.
    private func connects(_ micros: [UInt64]) -> HistogramCounts {
        let recorder = LatencyRecorder()
        for value in micros { recorder.record(micros: value) }
        return HistogramCounts(recorder.total)
    }

    /// `count` values spread evenly over `range` (deterministic).
    private func spread(_ range: ClosedRange<UInt64>, count: Int) -> [UInt64] {
        (0..<count).map { range.lowerBound + (range.upperBound - range.lowerBound) * UInt64($0) / UInt64(max(1, count - 1)) }
    }

    @Test("200 connects at 41–53 ms (a default mosquitto): the hint names set_tcp_nodelay")
    func clustered() throws {
        let hint = try #require(DelayedAckHint.hint(connect: connects(spread(41_000...53_000, count: 200))))
        #expect(hint.contains("set_tcp_nodelay true"))
        #expect(hint.hasPrefix("100 %"))
    }

    @Test("mostly delayed, a few fast and a few slow connects: still a cluster")
    func mostlyClustered() {
        let values = spread(42_000...50_000, count: 170) + spread(3_000...6_000, count: 10) + spread(90_000...300_000, count: 20)
        #expect(DelayedAckHint.hint(connect: connects(values)) != nil)
    }

    @Test("fast connects (broker with set_tcp_nodelay true): no hint")
    func fast() {
        #expect(DelayedAckHint.hint(connect: connects(spread(4_000...9_000, count: 200))) == nil)
    }

    @Test("connects spread from 1 to 300 ms (a loaded broker): no hint")
    func spreadOut() {
        #expect(DelayedAckHint.hint(connect: connects(spread(1_000...300_000, count: 300))) == nil)
    }

    @Test("half fast, half delayed (more than 10 % under the band): no hint")
    func mixed() {
        let values = spread(3_000...6_000, count: 100) + spread(42_000...50_000, count: 100)
        #expect(DelayedAckHint.hint(connect: connects(values)) == nil)
    }

    @Test("fewer than 10 connects say nothing")
    func tooFew() {
        #expect(DelayedAckHint.hint(connect: connects(spread(42_000...50_000, count: 9))) == nil)
        #expect(DelayedAckHint.hint(connect: connects(spread(42_000...50_000, count: 10))) != nil)
    }

    @Test("the hint reaches the JSON report (connect_hint, read back) and the HTML page; absent when there is none")
    func inReports() throws {
        var report = ShardTests.report(shard: "0/1", samples: [1000, 2000, 3000], wallStart: 1_790_000_000_000)
        let html = BenchHTML.render(report)
        #expect(!html.contains("connect-hint"))
        #expect(!String(decoding: try report.jsonData(), as: UTF8.self).contains("connect_hint"))
        report.connectHint = DelayedAckHint.hint(connect: connects(spread(41_000...53_000, count: 50)))
        let json = try report.jsonData()
        #expect(String(decoding: json, as: UTF8.self).contains("\"connect_hint\""))
        #expect(try BenchReport.decode(json).connectHint == report.connectHint)
        #expect(BenchHTML.render(report).contains("id=\"connect-hint\""))
    }
}
