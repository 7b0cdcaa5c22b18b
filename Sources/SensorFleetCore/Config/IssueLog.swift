
/// Collects the errors and warnings of one load, across all files.
final class IssueLog {
    var errors: [FleetIssue] = []
    var warnings: [FleetIssue] = []

    func error(_ file: String, line: Int? = nil, field: String? = nil, _ problem: String, fix: String) {
        errors.append(FleetIssue(file: file, line: line, field: field.map { SettingText.clipped($0, limit: 200) },
                                 problem: SettingText.clipped(problem, limit: SettingText.messageLimit),
                                 fix: SettingText.clipped(fix, limit: SettingText.messageLimit)))
    }

    /// `issues` grouped by file (files in the order first met), each file's issues by line;
    /// issues without a line keep their order after those with one.
    static func ordered(_ issues: [FleetIssue]) -> [FleetIssue] {
        var fileRank: [String: Int] = [:]
        for issue in issues where fileRank[issue.file] == nil {
            fileRank[issue.file] = fileRank.count
        }
        return issues.enumerated().sorted { a, b in
            let (fa, fb) = (fileRank[a.element.file] ?? 0, fileRank[b.element.file] ?? 0)
            if fa != fb { return fa < fb }
            let (la, lb) = (a.element.line ?? Int.max, b.element.line ?? Int.max)
            if la != lb { return la < lb }
            return a.offset < b.offset
        }.map(\.element)
    }

    func warning(_ file: String, line: Int? = nil, field: String? = nil, _ problem: String, fix: String) {
        warnings.append(FleetIssue(file: file, line: line, field: field.map { SettingText.clipped($0, limit: 200) },
                                   problem: SettingText.clipped(problem, limit: SettingText.messageLimit),
                                   fix: SettingText.clipped(fix, limit: SettingText.messageLimit)))
    }
}
