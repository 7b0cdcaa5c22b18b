
/// Reads one column of a recording for `type: replay`: a CSV file with a header row, or JSONL
/// (`.jsonl`, `.ndjson`: one JSON object per line). The time column holds seconds (any origin)
/// or ISO 8601 times (`2024-05-01T12:00:00Z`, `2024-05-01 12:00:00.250+02:00`; without a zone,
/// UTC); only the differences matter. An empty cell (or JSON `null`, or a missing key) means
/// no reading at that row. Blank lines and CSV lines starting with `#` are skipped.
enum ReplayFileReader {
    /// Problems reported per file before the rest are only counted.
    static let reportedProblems = 10

    static func read(path: String, timeColumn: String, column: String, field: String, map: MappingReader)
        -> (times: [Double], values: [Double?])?
    {
        guard let text = DataFile.text(path, field: field, line: map.line(of: "file"), map: map, what: "recording") else {
            return nil
        }
        let display = DataFile.display(path)
        let isJSONL = path.hasSuffix(".jsonl") || path.hasSuffix(".ndjson")
        var problems = 0
        func problem(_ line: Int?, _ column: String?, _ text: String, fix: String) {
            problems += 1
            if problems <= reportedProblems {
                map.log.error(display, line: line, field: column.map { "column \($0)" }, text, fix: fix)
            }
        }
        var times: [Double] = []
        var values: [Double?] = []
        var first: Double?
        var previous = -Double.infinity
        func add(line: Int, time: Double?, timeText: String, value: Double?) {
            guard let time else {
                problem(line, timeColumn, "expected seconds or an ISO 8601 time such as 2024-05-01T12:00:00Z, got \"\(SettingText.clipped(timeText))\"",
                        fix: "correct the time on line \(line) or remove the line")
                return
            }
            if time < previous {
                problem(line, timeColumn, "the time goes backwards (\(timeText) is before the row above)",
                        fix: "sort the file by time")
                return
            }
            previous = time
            if first == nil { first = time }
            times.append(time - first!)
            values.append(value)
        }

        var lineNumber = 0
        if isJSONL {
            for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
                lineNumber += 1
                let line = rawLine.trimmingWhitespace()
                if line.isEmpty { continue }
                guard let object = ConfigJSON(parsing: line)?.object else {
                    problem(lineNumber, nil, "not a JSON object", fix: "write one JSON object per line, e.g. {\"time\": 0, \"\(column)\": 21.5}")
                    continue
                }
                guard let timeValue = object[timeColumn], !timeValue.isNull else {
                    problem(lineNumber, timeColumn, "no `\(timeColumn)` key", fix: "give every line a `\(timeColumn)` (seconds or ISO 8601), or set time_column")
                    continue
                }
                let timeText = "\(timeValue)"
                let time: Double? = if let text = timeValue.string { parseTime(text) } else { timeValue.number }
                var value: Double?
                if let cell = object[column], !cell.isNull {
                    guard let number = cell.number, number.isFinite,
                          SettingRange.reading.contains(number)
                    else {
                        problem(lineNumber, column, "expected a number (or null), got \(SettingText.clipped("\(cell)"))",
                                fix: "correct the value on line \(lineNumber), or make it null for no reading")
                        continue
                    }
                    value = number
                }
                add(line: lineNumber, time: time, timeText: timeText, value: value)
            }
        } else {
            var header: [String]?
            var timeIndex = 0, valueIndex = 0
            for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
                lineNumber += 1
                let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
                if line.trimmingSpaces().isEmpty || line.hasPrefix("#") { continue }
                let cells = splitCSV(line)
                guard let names = header else {
                    header = cells
                    let known = cells.joined(separator: ", ")
                    guard let t = cells.firstIndex(of: timeColumn) else {
                        let guess = Suggestion.closest(to: timeColumn, in: cells).map { "; did you mean `\($0)`?" } ?? ""
                        map.log.error(display, line: lineNumber, field: "column \(timeColumn)",
                                      "no time column `\(timeColumn)` in the header (\(SettingText.clipped(known)))\(guess)",
                                      fix: "set time_column in \(map.path) to the time column's name")
                        return nil
                    }
                    guard let v = cells.firstIndex(of: column) else {
                        let guess = Suggestion.closest(to: column, in: cells).map { "; did you mean `\($0)`?" } ?? ""
                        map.log.error(display, line: lineNumber, field: "column \(column)",
                                      "no column `\(column)` in the header (\(SettingText.clipped(known)))\(guess)",
                                      fix: "set \(map.field("column")) to one of the file's columns")
                        return nil
                    }
                    timeIndex = t
                    valueIndex = v
                    continue
                }
                guard cells.count == names.count else {
                    problem(lineNumber, nil, "\(cells.count) cells, the header has \(names.count)",
                            fix: "give line \(lineNumber) one cell per column (empty for no reading)")
                    continue
                }
                let timeText = cells[timeIndex]
                let cell = cells[valueIndex]
                var value: Double?
                if !cell.isEmpty {
                    guard let number = Double(cell), SettingRange.reading.contains(number) else {
                        problem(lineNumber, column, "expected a number (or an empty cell), got \"\(SettingText.clipped(cell))\"",
                                fix: "correct the value on line \(lineNumber), or leave the cell empty for no reading")
                        continue
                    }
                    value = number
                }
                add(line: lineNumber, time: parseTime(timeText), timeText: timeText, value: value)
            }
            if header == nil {
                map.log.error(display, field: nil, "the file is empty; expected a header row and at least one row",
                              fix: "give the recording a header row such as `time,\(column)` and its rows")
                return nil
            }
        }
        if problems > reportedProblems {
            map.log.error(display, field: nil, "\(problems - reportedProblems) more malformed rows", fix: "correct the rows above first")
        }
        guard problems == 0 else { return nil }
        if times.isEmpty {
            map.log.error(display, field: nil, "no rows", fix: "add rows with a time and a `\(column)` value")
            return nil
        }
        return (times, values)
    }

    /// Cells of one CSV line: separated by commas, `"…"` quoting with `""` for a quote;
    /// whitespace around unquoted cells trimmed.
    static func splitCSV(_ line: Substring) -> [String] {
        var cells: [String] = []
        var cell = ""
        var quoted = false
        var wasQuoted = false
        var iterator = line.makeIterator()
        var pending: Character? = nil
        while let c = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    if let next = iterator.next() {
                        if next == "\"" { cell.append("\"") } else { quoted = false; pending = next }
                    } else {
                        quoted = false
                    }
                } else {
                    cell.append(c)
                }
            } else if c == "," {
                cells.append(wasQuoted ? cell : cell.trimmingSpaces())
                cell = ""
                wasQuoted = false
            } else if c == "\"" && cell.trimmingSpaces().isEmpty {
                cell = ""
                quoted = true
                wasQuoted = true
            } else {
                cell.append(c)
            }
        }
        cells.append(wasQuoted ? cell : cell.trimmingSpaces())
        return cells
    }

    /// Seconds: a plain number, or an ISO 8601 date and time (seconds since 1970).
    static func parseTime(_ text: String) -> Double? {
        let t = text.trimmingSpaces()
        if let seconds = Double(t), seconds.isFinite { return seconds }
        return parseISO8601(t)
    }

    /// `YYYY-MM-DD[T| ]HH:MM[:SS[.fraction]][Z|±HH[:MM]|±HHMM]`; no zone: UTC.
    static func parseISO8601(_ text: String) -> Double? {
        let b = Array(text.utf8)
        var i = 0
        func digits(_ n: Int) -> Int? {
            guard i + n <= b.count else { return nil }
            var v = 0
            for k in 0..<n {
                let d = b[i + k]
                guard d >= 48 && d <= 57 else { return nil }
                v = v * 10 + Int(d - 48)
            }
            i += n
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect(45), let month = digits(2), expect(45), let day = digits(2),
              (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        guard i < b.count, b[i] == 84 || b[i] == 116 || b[i] == 32 else { return nil }  // T, t, space
        i += 1
        guard let hour = digits(2), expect(58), let minute = digits(2), hour <= 24, minute <= 59 else { return nil }
        var second = 0.0
        if expect(58) {
            guard let s = digits(2), s <= 60 else { return nil }
            second = Double(s)
            if i < b.count, b[i] == 46 || b[i] == 44 {  // . or ,
                i += 1
                var scale = 0.1
                var any = false
                while i < b.count, b[i] >= 48 && b[i] <= 57 {
                    second += Double(b[i] - 48) * scale
                    scale /= 10
                    i += 1
                    any = true
                }
                guard any else { return nil }
            }
        }
        var offset = 0
        if i < b.count {
            if b[i] == 90 || b[i] == 122 {  // Z
                i += 1
            } else if b[i] == 43 || b[i] == 45 {  // + -
                let sign = b[i] == 45 ? -1 : 1
                i += 1
                guard let oh = digits(2), oh <= 23 else { return nil }
                var om = 0
                if i < b.count {
                    _ = expect(58)
                    guard let m = digits(2), m <= 59 else { return nil }
                    om = m
                }
                offset = sign * (oh * 3600 + om * 60)
            }
        }
        guard i == b.count else { return nil }
        // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Double(days * 86_400 + hour * 3600 + minute * 60 - offset) + second
    }
}
