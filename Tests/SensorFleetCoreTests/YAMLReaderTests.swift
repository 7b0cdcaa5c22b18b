import Testing

@testable import SensorFleetCore

/// Our YAML reader (libyaml events → `YAML.Node`) reads as Yams did: the YAML 1.1 tag of every
/// plain scalar, Yams' number constructors, anchors and aliases, duplicate keys, marks, several
/// documents, and libyaml's errors with their lines and columns.
@Suite struct YAMLReaderTests {
    /// The value of `v:` in `v: <text>`.
    private func value(_ text: String) throws -> YAML.Node {
        let root = try #require(try YAML.compose(yaml: "v: \(text)\n"))
        return try #require(root["v"])
    }

    private func scalar(_ text: String) throws -> YAML.Node.Scalar {
        try #require(try value(text).scalar)
    }

    private func error(_ yaml: String) -> YAML.Error? {
        do {
            _ = try YAML.compose(yaml: yaml)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Tags

    @Test("plain scalars resolve to Yams' YAML 1.1 tags", arguments: [
        ("~", YAML.Tag.null), ("null", .null), ("Null", .null), ("NULL", .null), ("", .null), ("nUll", .str),
        ("yes", .bool), ("Yes", .bool), ("YES", .bool), ("no", .bool), ("No", .bool), ("NO", .bool),
        ("true", .bool), ("True", .bool), ("TRUE", .bool), ("false", .bool), ("False", .bool), ("FALSE", .bool),
        ("on", .bool), ("On", .bool), ("ON", .bool), ("off", .bool), ("Off", .bool), ("OFF", .bool),
        ("tRue", .str), ("y", .str), ("n", .str),
        ("0", .int), ("-0", .int), ("+12", .int), ("1_000", .int), ("0x1F", .int), ("0x_F", .int), ("0o17", .int),
        ("017", .int), ("0b101", .int), ("-0b11", .int), ("1:30", .int), ("190:20:30", .int), ("1:60", .str),
        ("08", .float), ("0X1F", .str), ("0b102", .str), ("0b", .str),
        ("1.5", .float), ("1.", .float), ("1e5", .float), ("1E-5", .float), ("1_000.5", .float), (".5", .float),
        ("-.5", .str), (".5e+3", .float), ("1:30.5", .float), (".inf", .float), ("-.Inf", .float), ("+.INF", .float),
        (".nan", .float), (".NaN", .float), ("-.nan", .str), (".iNf", .str), ("inf", .str), ("nan", .str), ("1e", .str),
        ("<<", .merge), ("=", .value), ("2024-01-02", .timestamp), ("2024-1-2 3:04:05.5 +02:00", .timestamp),
        ("2024-1-2", .str), ("hello world", .str), ("0.0.0.0:1883", .str), ("５", .str),
    ])
    func plainTags(text: String, tag: YAML.Tag) throws {
        let node = try value(text)
        #expect(node.tag == tag, "\(text)")
        #expect(node.scalar?.style == .plain)
    }

    @Test("quoted and block scalars are text, whatever they hold", arguments: ["5", "true", "~", "", ".inf", "0x1F"])
    func quotedIsText(text: String) throws {
        for written in ["'\(text)'", "\"\(text)\""] {
            let node = try value(written)
            #expect(node.tag == .str, "\(written)")
            #expect(!node.isPlainScalar && !node.isNull, "\(written)")
            #expect(MappingReader.int(node) == nil && MappingReader.double(node) == nil, "\(written)")
        }
        #expect(try value("|\n  \(text)x").tag == .str)
    }

    @Test("explicit tags win over resolution: `!!str 5` is text written plain, `!!int \"5\"` an int written quoted")
    func explicitTags() throws {
        let text = try value("!!str 5")
        #expect(text.tag == .str && text.isPlainScalar && text.scalar?.string == "5")
        #expect(MappingReader.int(text) == nil)
        #expect(text.humanDescription == "\"5\"")
        let int = try value("!!int \"5\"")
        #expect(int.tag == .int && int.scalar?.style == .doubleQuoted)
        #expect(try value("! 5").tag == .str)
        #expect(try value("!local 5").tag.rawValue == "!local")
        #expect(try value("!!float 5").tag == .float)
    }

    // MARK: Numbers

    @Test("whole numbers as Yams constructed them: underscores, 0x, 0o, a leading 0 (octal), 0b, sexagesimal")
    func wholeNumbers() throws {
        let expected: [(String, Int?)] = [
            ("1_000", 1000), ("0x1F", 31), ("-0x1F", -31), ("0x_F", 15), ("0o17", 15), ("017", 15), ("08", nil),
            ("0b101", 5), ("+0b11", 3), ("1:30", 90), ("1:30:00", 5400), ("-1:30", -90), ("0", 0), ("-0", nil),
            ("+123", 123), ("9223372036854775807", .max), ("9223372036854775808", nil),
        ]
        for (text, number) in expected {
            #expect(Int.construct(from: try scalar(text)) == number, "\(text)")
        }
        #expect(MappingReader.int(try value("-0")) == 0)
        #expect(UInt64.construct(from: try scalar("18446744073709551615")) == .max)
        #expect(UInt64.construct(from: try scalar("-1")) == nil)
        #expect(Int.construct(from: try scalar("'5'")) == nil)
        // A sexagesimal number too big for the type is nil (Yams trapped).
        #expect(Int.construct(from: try scalar("99999999999:59:59:59:59:59:59")) == nil)
    }

    @Test("floating numbers: exponents, underscores, sexagesimal, .inf and .nan")
    func floatingNumbers() throws {
        let expected: [(String, Double)] = [
            ("1.5", 1.5), ("1.", 1), ("1e5", 100_000), ("1E-5", 0.00001), ("1_000.5", 1000.5), (".5", 0.5),
            ("1:30.5", 90.5), ("-1:30.5", -90.5), (".inf", .infinity), ("-.Inf", -.infinity), ("+.INF", .infinity),
            ("1e400", .infinity),
        ]
        for (text, number) in expected {
            #expect(Double.construct(from: try scalar(text)) == number, "\(text)")
        }
        #expect(Double.construct(from: try scalar(".NaN"))?.isNaN == true)
        #expect(MappingReader.double(try value("0x10")) == 16)
        #expect(MappingReader.double(try value("99999999999999999999999")) == 1e23)
        #expect(MappingReader.double(try value("-.5")) == nil, "-.5 is text in YAML 1.1 as Yams resolved it")
    }

    @Test("booleans: Bool.construct reads any case of true/yes/on and false/no/off, not a scalar tagged str")
    func booleans() throws {
        #expect(try value("yes").bool == true && value("Off").bool == false && value("TRUE").bool == true)
        #expect(try value("'yes'").bool == nil)
        #expect(try value("maybe").bool == nil)
    }

    // MARK: Structure

    @Test("an alias is the node its anchor names, with the anchor's mark; an undefined alias is an error at its place")
    func anchorsAndAliases() throws {
        let root = try #require(try YAML.compose(yaml: "a: &x {k: 1, l: [2, 3]}\nb: *x\nc: &s hello\nd: *s\n"))
        #expect(root["b"] == root["a"])
        #expect(root["b"]?.mark == YAML.Mark(line: 1, column: 4))
        #expect(root["d"]?.scalar?.string == "hello" && root["d"]?.mark == YAML.Mark(line: 3, column: 4))
        // A later anchor of the same name wins.
        let shadowed = try #require(try YAML.compose(yaml: "a: &x 1\nb: &x 2\nc: *x\n"))
        #expect(shadowed["c"]?.int == 2)
        guard case .composer(nil, "found undefined alias", YAML.Mark(line: 1, column: 4))? = error("a: *nope\n") else {
            Issue.record("expected an undefined alias at 1:4, got \(String(describing: error("a: *nope\n")))")
            return
        }
        // A node cannot hold an alias of itself (its anchor is registered once it is complete).
        guard case .composer(_, "found undefined alias", YAML.Mark(line: 1, column: 11))? = error("a: &r [1, *r]\n") else {
            Issue.record("expected an undefined alias at 1:11")
            return
        }
    }

    @Test("a key twice in one mapping is an error naming the keys, at the first one's first line; quoting does not make a key different, a tag does")
    func duplicateKeys() throws {
        guard case .duplicatedKeysInMapping(let keys, let context)? = error("a: 1\nb: 2\na: 3\nb: 4\n") else {
            Issue.record("expected duplicated keys")
            return
        }
        #expect(keys == ["a", "b"] && context.mark == YAML.Mark(line: 1, column: 1))
        guard case .duplicatedKeysInMapping(let nested, let place)? = error("x:\n  z: 0\n  y: 1\n  'y': 2\n") else {
            Issue.record("expected a duplicated nested key")
            return
        }
        #expect(nested == ["y"] && place.mark == YAML.Mark(line: 3, column: 3))
        let issue = YAMLFile.issue(for: try #require(error("a: 1\nb: 2\na: 3\nb: 4\n")), displayPath: "f.yaml", text: "")
        #expect(issue.description == "f.yaml:1: a: key `a`, `b` appears more than once in the same mapping — fix: keep only one `a`, `b` line in that mapping")
        // 1 (an int) and '1' (text) are different keys.
        #expect(error("1: x\n'1': y\n") == nil)
    }

    @Test("marks are 1-based line and column, columns counting characters")
    func marks() throws {
        let root = try #require(try YAML.compose(yaml: "top:\n  nested:\n    - first\n    - é: 42\n"))
        let list = try #require(root["top"]?["nested"])
        #expect(list.mark == YAML.Mark(line: 3, column: 5))
        #expect(list["1"]?.mark == YAML.Mark(line: 4, column: 7))
        #expect(list["1"]?["é"]?.mark == YAML.Mark(line: 4, column: 10))
        #expect(root.mark == YAML.Mark(line: 1, column: 1))
    }

    @Test("several documents: composeAll reads each, compose refuses the second; no document is nil, an empty one a null")
    func documents() throws {
        let all = try YAML.composeAll(yaml: "a: 1\n---\nb: 2\n---\n- 3\n")
        #expect(all.count == 3 && all[1]["b"]?.int == 2 && all[2]["0"]?.int == 3)
        guard case .composer(let context, "but found another document", YAML.Mark(line: 2, column: 1))? = error("a: 1\n---\nb: 2\n") else {
            Issue.record("expected a second document to be refused")
            return
        }
        #expect(context?.text == "expected a single document in the stream" && context?.mark == YAML.Mark(line: 1, column: 1))
        #expect(try YAML.compose(yaml: "") == nil)
        #expect(try YAML.compose(yaml: "# only a comment\n") == nil)
        #expect(try YAML.compose(yaml: "---\n")?.isNull == true)
        #expect(try YAML.composeAll(yaml: "").isEmpty)
    }

    // MARK: Errors

    @Test("a syntax error carries libyaml's problem, its context and their lines and columns, into the same issue as before")
    func syntaxError() throws {
        let yaml = "a: 1\nb: 'open\n"
        guard case .scanner(let context, let problem, let mark)? = error(yaml) else {
            Issue.record("expected a scanner error, got \(String(describing: error(yaml)))")
            return
        }
        #expect(problem == "found unexpected end of stream" && mark == YAML.Mark(line: 3, column: 1))
        #expect(context?.text == "while scanning a quoted scalar" && context?.mark == YAML.Mark(line: 2, column: 4))
        let issue = YAMLFile.issue(for: try #require(error(yaml)), displayPath: "f.yaml", text: yaml)
        #expect(issue.line == 3)
        #expect(issue.problem == "YAML syntax error at line 3, column 1: found unexpected end of stream (while scanning a quoted scalar at line 2, column 4)")

        guard case .parser(_, "did not find expected '-' indicator", YAML.Mark(line: 3, column: 3))? = error("a:\n  - 1\n  b: 2\n") else {
            Issue.record("expected a parser error at 3:3")
            return
        }
        let tab = try #require(error("a:\n\t- 1\n"))
        #expect(YAMLFile.issue(for: tab, displayPath: "f.yaml", text: "").line == 2)
    }

    @Test("a control character is a reader error whose offset gives the line")
    func readerError() throws {
        let yaml = "a: 1\nb: é\u{01}\n"
        guard case .reader(let problem, let offset, _)? = error(yaml) else {
            Issue.record("expected a reader error")
            return
        }
        #expect(problem == "control characters are not allowed" && offset == 9)
        #expect(YAMLFile.issue(for: try #require(error(yaml)), displayPath: "f.yaml", text: yaml).line == 2)
    }
}
