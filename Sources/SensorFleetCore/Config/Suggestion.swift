
/// "Did you mean …?" for misspelt keys and values.
enum Suggestion {
    /// The candidate closest to `word` by edit distance, when it is close enough to be a likely typo.
    /// Words longer than this get no suggestion: no key or value we know is that long, and the
    /// comparison costs length × length.
    static let longestWord = 64

    static func closest(to word: String, in candidates: [String]) -> String? {
        guard word.utf8.count <= longestWord else { return nil }
        let lowered = word.lowercased().replacing("-", with: "_")
        var best: (candidate: String, distance: Int)?
        for candidate in candidates where candidate.utf8.count <= longestWord {
            let distance = editDistance(lowered, candidate.lowercased())
            if best.map({ distance < $0.distance }) ?? true {
                best = (candidate, distance)
            }
        }
        guard let best else { return nil }
        let limit = max(1, min(3, lowered.count / 3))
        return best.distance <= limit ? best.candidate : nil
    }

    /// Levenshtein distance, counting a swap of two neighbouring letters as one edit.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }
}
