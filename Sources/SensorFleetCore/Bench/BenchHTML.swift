import Foundation

/// One self-contained HTML page (inline SVG, no scripts, no network) for a bench report.
public enum BenchHTML {
    public static func render(_ report: BenchReport) -> String {
        let series = report.timeSeries
        let t = series.map(\.t)
        var html = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>SensorFleet bench \(escape(report.startedAt))</title>
        <style>
        body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
        h1{font-size:22px}h2{font-size:17px;margin-top:28px}
        table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
        .ok{color:#1a7f37}.bad{color:#c62828}svg{background:#fafafa;border:1px solid #ddd}
        .legend span{margin-right:16px;font-size:13px}
        </style></head><body>
        <h1>SensorFleet bench — \(escape(report.settings.broker))</h1>
        <p class="\(report.verified ? "ok" : "bad")"><b>\(report.verified ? "Verified: every message sent arrived exactly once." : "NOT verified: see gaps, duplicates and dropped below.")</b></p>
        <h2>Results</h2>
        <table id="results">
        \(row("sent", report.sent))\(row("acknowledged", report.acknowledged))\(row("received (verifier)", report.received))
        \(row("gaps", report.gaps))\(row("duplicates", report.duplicates))\(row("out of order", report.outOfOrder))
        \(row("dropped", report.dropped))\(row("overruns", report.overruns))\(row("connect failures", report.connectFailures))
        \(row("msgs/s sent (measured window)", report.msgsPerS))\(row("msgs/s received", report.receivedPerS))
        \(row("end-to-end latency ms p50 / p90 / p99 / p99.9 / max", lat(report.latencyMs.endToEnd)))
        \(row("PUBACK latency ms p50 / p90 / p99 / p99.9 / max", lat(report.latencyMs.puback)))
        \(row("connect ms p50 / p90 / p99 / p99.9 / max", lat(report.connectMs)))
        \(row("CPU seconds (whole process)", report.cpuSeconds))\(row("verifier thread CPU seconds", report.verifierCpuSeconds.map { "\($0)" } ?? "–"))
        \(row("peak RSS KB", report.peakRssKb))
        </table>
        <h2>Sent vs received per second</h2>
        \(chart(id: "chart-rate", x: t, lines: [("sent/s", "#1f77b4", series.map { Double($0.sent) }), ("received/s", "#2ca02c", series.map { Double($0.received) })], yLabel: "msg/s"))
        <h2>Connected devices</h2>
        \(chart(id: "chart-connected", x: t, lines: [("connected", "#9467bd", series.map { Double($0.connected) })], yLabel: "devices"))
        <h2>End-to-end latency percentiles per second</h2>
        \(chart(id: "chart-latency", x: t, lines: [("p50", "#2ca02c", series.map(\.e2eP50Ms)), ("p99", "#ff7f0e", series.map(\.e2eP99Ms)), ("max", "#d62728", series.map(\.e2eMaxMs))], yLabel: "ms"))
        <h2>Latency distribution (end to end, whole measured window)</h2>
        \(chart(id: "chart-distribution", x: report.e2eDistribution.map { percentileX($0[0]) }, lines: [("latency at percentile", "#17becf", report.e2eDistribution.map { $0[1] })], yLabel: "ms", xLabel: "percentile (log scale of 1/(1−p)): 0, 90, 99, 99.9, 99.99, 100", xTicks: report.e2eDistribution.map { formatPercent($0[0]) }))
        <h2>Settings</h2>
        <table id="settings">
        \(row("broker", report.settings.broker))\(row("devices", report.settings.devices))\(row("connect rate /s", report.settings.connectRate))
        \(row("rate per device /s (0 = as fast as acknowledged)", report.settings.ratePerDevice))\(row("QoS", report.settings.qos))
        \(row("payload bytes", report.settings.payloadBytes))\(row("messages per device", report.settings.messagesPerDevice.map { "\($0)" } ?? "–"))
        \(row("duration s", report.settings.durationS))\(row("warm-up s", report.settings.warmupS))\(row("bind", report.settings.bind.joined(separator: ", ")))
        \(row("verifier connections", report.settings.verifierConnections))\(row("descriptors per client", report.settings.descriptorsPerClient))
        \(row("reactor threads", report.settings.reactorThreads))\(row("started", report.startedAt))
        </table>
        </body></html>

        """
        html = html.replacingOccurrences(of: "\n\n", with: "\n")
        return html
    }

    static func row(_ name: String, _ value: Any) -> String {
        "<tr><th>\(escape(name))</th><td>\(escape("\(value)"))</td></tr>"
    }

    static func lat(_ s: LatencySummary) -> String { "\(s.p50) / \(s.p90) / \(s.p99) / \(s.p999) / \(s.max) (n=\(s.count))" }

    static func percentileX(_ p: Double) -> Double { p >= 100 ? 5 : min(5, log10(1 / max(1e-5, 1 - p / 100))) }
    static func formatPercent(_ p: Double) -> String { p == p.rounded() ? String(Int(p)) : String(p) }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// A line chart as inline SVG: one `<polyline class="series">` per line, axes with ticks.
    static func chart(id: String, x: [Double], lines: [(String, String, [Double])], yLabel: String,
                      xLabel: String = "seconds", xTicks: [String]? = nil) -> String {
        let width = 900.0, height = 260.0, left = 60.0, right = 20.0, top = 20.0, bottom = 40.0
        let plotW = width - left - right, plotH = height - top - bottom
        let xMin = x.min() ?? 0, xMax = max((x.max() ?? 1), xMin + 1e-9)
        let yMax = max(lines.flatMap(\.2).max() ?? 1, 1e-9) * 1.1
        func px(_ v: Double) -> Double { left + (v - xMin) / (xMax - xMin) * plotW }
        func py(_ v: Double) -> Double { top + plotH - v / yMax * plotH }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var svg = "<svg id=\"\(id)\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\">"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(top + plotH))\" x2=\"\(f(left + plotW))\" y2=\"\(f(top + plotH))\" stroke=\"#333\"/>"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + plotH))\" stroke=\"#333\"/>"
        for i in 0...4 {
            let v = yMax / 1.1 * Double(i) / 4
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(py(v) + 4))\" font-size=\"11\" text-anchor=\"end\">\(compact(v))</text>"
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(py(v)))\" x2=\"\(f(left + plotW))\" y2=\"\(f(py(v)))\" stroke=\"#e4e4e4\"/>"
        }
        if let xTicks {
            for (i, label) in xTicks.enumerated() where i < x.count {
                svg += "<text x=\"\(f(px(x[i])))\" y=\"\(f(top + plotH + 14))\" font-size=\"10\" text-anchor=\"middle\">\(escape(label))</text>"
            }
        } else {
            for i in 0...5 {
                let v = xMin + (xMax - xMin) * Double(i) / 5
                svg += "<text x=\"\(f(px(v)))\" y=\"\(f(top + plotH + 14))\" font-size=\"11\" text-anchor=\"middle\">\(compact(v))</text>"
            }
        }
        svg += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 6))\" font-size=\"12\" text-anchor=\"middle\">\(escape(xLabel))</text>"
        svg += "<text x=\"14\" y=\"\(f(top + plotH / 2))\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(f(top + plotH / 2)))\">\(escape(yLabel))</text>"
        for (name, color, values) in lines {
            let points = zip(x, values).map { "\(f(px($0))),\(f(py($1)))" }.joined(separator: " ")
            svg += "<polyline class=\"series\" data-name=\"\(escape(name))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points)\"/>"
        }
        var legendX = left + 10
        for (name, color, _) in lines {
            svg += "<rect x=\"\(f(legendX))\" y=\"\(f(top - 14))\" width=\"10\" height=\"10\" fill=\"\(color)\"/><text x=\"\(f(legendX + 14))\" y=\"\(f(top - 5))\" font-size=\"12\">\(escape(name))</text>"
            legendX += 20 + Double(name.count) * 7
        }
        svg += "</svg>"
        return svg
    }

    static func compact(_ v: Double) -> String {
        if v >= 10_000 { return String(format: "%.0fk", v / 1000) }
        if v >= 100 || v == v.rounded() { return String(format: "%.0f", v) }
        return String(format: "%.2f", v)
    }
}
