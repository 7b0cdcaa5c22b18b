#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
        <p>Run <b>\(escape(report.runId ?? "–"))</b>\(report.shards == nil ? ", shard \(escape(report.shard ?? "0/1"))" : ", merged from \(report.shards!.count) shard reports")\(report.startLateS.map { $0 > 0 ? " (started up to \($0) s after the start time)" : "" } ?? "")</p>
        \(shardTable(report))
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
        \(report.connectHint.map { "<p id=\"connect-hint\"><b>Connect times:</b> \(escape($0))</p>" } ?? "")
        <h2>Sent vs received per second</h2>
        \(chart(id: "chart-rate", x: t, lines: [("sent/s", "#1f77b4", series.map { Double($0.sent) }), ("received/s", "#2ca02c", series.map { Double($0.received) })], yLabel: "msg/s", warmup: report.settings.warmupS))
        <h2>Connected devices</h2>
        \(chart(id: "chart-connected", x: t, lines: [("connected", "#9467bd", series.map { Double($0.connected) })], yLabel: "devices", warmup: report.settings.warmupS))
        <h2>End-to-end latency percentiles per second</h2>
        \(chart(id: "chart-latency", x: t, lines: [("p50", "#2ca02c", series.map(\.e2eP50Ms)), ("p99", "#ff7f0e", series.map(\.e2eP99Ms)), ("max", "#d62728", series.map(\.e2eMaxMs))], yLabel: "ms (log scale)", warmup: report.settings.warmupS, logY: true))
        <h2>Latency distribution (end to end, whole measured window)</h2>
        \(chart(id: "chart-distribution", x: report.e2eDistribution.map { percentileX($0[0]) }, lines: [("latency at percentile", "#17becf", report.e2eDistribution.map { $0[1] })], yLabel: "ms (log scale)", xLabel: "percentile (log scale of 1/(1−p)): 0, 90, 99, 99.9, 99.99, 100", xTicks: report.e2eDistribution.map { formatPercent($0[0]) }, logY: true))
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
        html = html.replacing("\n\n", with: "\n")
        return html
    }

    /// One row per shard of a merged report; "" otherwise.
    static func shardTable(_ report: BenchReport) -> String {
        guard let rows = report.shards else { return "" }
        var html = "<h2>Shards</h2><table id=\"shards\"><tr><th>shard</th><th>file</th><th>devices</th><th>started</th><th>late s</th><th>sent</th><th>received</th><th>gaps</th><th>duplicates</th><th>dropped</th><th>msg/s</th><th>e2e p99 ms</th><th>verified</th></tr>"
        for r in rows {
            let cells: [String] = [r.shard, r.file, "\(r.devices)", r.startedAt, r.startLateS.map { "\($0)" } ?? "–", "\(r.sent)", "\(r.received)",
                                   "\(r.gaps)", "\(r.duplicates)", "\(r.dropped)", "\(r.msgsPerS)", "\(r.e2eP99Ms)", r.verified ? "yes" : "NO"]
            html += "<tr class=\"shard\">" + cells.map { "<td>\(escape($0))</td>" }.joined() + "</tr>"
        }
        return html + "</table>"
    }

    static func row(_ name: String, _ value: Any) -> String {
        "<tr><th>\(escape(name))</th><td>\(escape("\(value)"))</td></tr>"
    }

    static func lat(_ s: LatencySummary) -> String { "\(s.p50) / \(s.p90) / \(s.p99) / \(s.p999) / \(s.max) (n=\(s.count))" }

    static func percentileX(_ p: Double) -> Double { p >= 100 ? 5 : min(5, log10(1 / max(1e-5, 1 - p / 100))) }
    static func formatPercent(_ p: Double) -> String { p == p.rounded() ? String(Int(p)) : String(p) }

    /// `&`, `<`, `>` and `"` as entities, scalar by scalar (an `&` that a combining mark
    /// follows is one Character, and still an ampersand).
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A round step (1, 2 or 5 × 10^k) that cuts `span` into about `target` parts.
    static func niceStep(_ span: Double, target: Int) -> Double {
        let span = span > 0 && span.isFinite ? span : 1
        let raw = span / Double(max(1, target))
        let magnitude = pow(10, floor(log10(raw)))
        let steps = [1.0, 2, 5, 10].map { $0 * magnitude }
        // The step whose number of parts is nearest the target; the larger one on a tie.
        return steps.min { a, b in
            let da = abs((span / a).rounded(.up) - Double(target)), db = abs((span / b).rounded(.up) - Double(target))
            return da < db || (da == db && a > b)
        } ?? magnitude
    }

    /// Round axis ticks from 0 to at least `maximum`: steps of 1, 2 or 5 × 10^k, about `target`
    /// of them (4.4 → 0, 1, …, 5; 11.2 → 0, 2, …, 12).
    static func niceTicks(upTo maximum: Double, target: Int = 5) -> [Double] {
        let top = maximum > 0 && maximum.isFinite ? maximum : 1
        let step = niceStep(top, target: target)
        let count = Int((top / step - 1e-9).rounded(.up))
        return (0...max(1, count)).map { (Double($0) * step * 1e9).rounded() / 1e9 }
    }

    /// Ticks of a log axis covering `low…high`: 1, 2 and 5 of each decade.
    static func logTicks(from low: Double, to high: Double) -> [Double] {
        let first = Int(floor(log10(max(low, 1e-6)))), last = Int(ceil(log10(max(high, low * 10, 1e-6))))
        var ticks: [Double] = []
        for e in first...last {
            for m in [1.0, 2, 5] {
                // Divided rather than multiplied by a negative power: 2 / 10 is exactly 0.2.
                let v = e < 0 ? m / pow(10, Double(-e)) : m * pow(10, Double(e))
                if v >= low * 0.9999 && v <= high * 1.0001 { ticks.append(v) }
            }
        }
        return ticks
    }

    /// A line chart as inline SVG: one `<polyline class="series">` per line, axes with round
    /// ticks (1-2-5 steps; on a log axis 1, 2, 5 of each decade, where zeros are gaps), the
    /// warm-up (x below `warmup`) shaded, x labels that would overlap left out.
    static func chart(id: String, x: [Double], lines: [(String, String, [Double])], yLabel: String,
                      xLabel: String = "seconds", xTicks: [String]? = nil, warmup: Double = 0, logY: Bool = false) -> String {
        let width = 900.0, height = 260.0, left = 60.0, right = 20.0, top = 20.0, bottom = 40.0
        let plotW = width - left - right, plotH = height - top - bottom
        // Time axes start at 0, the start of the run (a second's sample is drawn at its end).
        let xMin = xTicks == nil ? min(0, x.min() ?? 0) : (x.min() ?? 0), xMax = max((x.max() ?? 1), xMin + 1e-9)
        let values = lines.flatMap(\.2)
        let yTicks: [Double]
        let yLow: Double, yHigh: Double
        if logY {
            let positive = values.filter { $0 > 0 }
            let low = pow(10, floor(log10(positive.min() ?? 1))), high = pow(10, ceil(log10(max(positive.max() ?? 10, low * 10))))
            yTicks = logTicks(from: low, to: high)
            yLow = low; yHigh = high
        } else {
            yTicks = niceTicks(upTo: values.max() ?? 1)
            yLow = 0; yHigh = yTicks.last ?? 1
        }
        func px(_ v: Double) -> Double { left + (v - xMin) / (xMax - xMin) * plotW }
        func py(_ v: Double) -> Double {
            if logY { return top + plotH - (log10(v) - log10(yLow)) / (log10(yHigh) - log10(yLow)) * plotH }
            return top + plotH - (v - yLow) / (yHigh - yLow) * plotH
        }
        func f(_ v: Double) -> String { String(cFormat: "%.1f", v) }
        var svg = "<svg id=\"\(id)\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" data-y-scale=\"\(logY ? "log" : "linear")\">"
        if warmup > xMin, xTicks == nil {
            let end = min(warmup, xMax)
            svg += "<rect class=\"warmup\" x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(px(end) - left))\" height=\"\(f(plotH))\" fill=\"#eeeeee\"/>"
            svg += "<text x=\"\(f(left + 4))\" y=\"\(f(top + 12))\" font-size=\"11\" fill=\"#777\">warm-up</text>"
        }
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(top + plotH))\" x2=\"\(f(left + plotW))\" y2=\"\(f(top + plotH))\" stroke=\"#333\"/>"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + plotH))\" stroke=\"#333\"/>"
        for v in yTicks {
            svg += "<text class=\"ytick\" x=\"\(f(left - 6))\" y=\"\(f(py(v) + 4))\" font-size=\"11\" text-anchor=\"end\">\(compact(v))</text>"
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(py(v)))\" x2=\"\(f(left + plotW))\" y2=\"\(f(py(v)))\" stroke=\"#e4e4e4\"/>"
        }
        var lastLabelX = -Double.infinity
        func xTick(_ at: Double, _ label: String) {
            // Leave out a label that would run into the previous one (about 7 px a character).
            let half = Double(label.count) * 3.5
            guard at - half >= lastLabelX + 4 else { return }
            lastLabelX = at + half
            svg += "<text class=\"xtick\" x=\"\(f(at))\" y=\"\(f(top + plotH + 14))\" font-size=\"11\" text-anchor=\"middle\">\(escape(label))</text>"
        }
        if let xTicks {
            for (i, label) in xTicks.enumerated() where i < x.count { xTick(px(x[i]), label) }
        } else {
            // Round values in absolute terms (10, 20, 30 s), not offsets from the first second.
            let step = niceStep(xMax - xMin, target: 8)
            for v in stride(from: (xMin / step).rounded(.up) * step, through: xMax + 1e-9, by: step) {
                xTick(px(v), compact((v * 1e9).rounded() / 1e9))
            }
        }
        svg += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 6))\" font-size=\"12\" text-anchor=\"middle\">\(escape(xLabel))</text>"
        svg += "<text x=\"14\" y=\"\(f(top + plotH / 2))\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(f(top + plotH / 2)))\">\(escape(yLabel))</text>"
        for (name, color, values) in lines {
            // On a log axis a zero (no sample that second) is a gap, not a point.
            let points = zip(x, values).filter { !logY || $0.1 > 0 }.map { "\(f(px($0))),\(f(py($1)))" }.joined(separator: " ")
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

    /// A tick label: 20k, 150, 2.5, 0.05 (no trailing zeros).
    static func compact(_ v: Double) -> String {
        if v >= 10_000 { return trim(String(cFormat: "%.1f", v / 1000)) + "k" }
        if v >= 100 || v == v.rounded() { return String(cFormat: "%.0f", v) }
        return trim(String(cFormat: "%.3f", v))
    }

    static func trim(_ text: String) -> String {
        guard text.contains(".") else { return text }
        var t = text
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t
    }
}
