internal import CYAML

extension YAML {
    /// The one document of `yaml` as a node tree; nil when the text holds no document (empty, or
    /// only comments). A second document is an error, as with Yams' `compose(yaml:)`.
    public static func compose(yaml: String) throws(YAML.Error) -> Node? {
        try withComposer(yaml) { composer throws(YAML.Error) in try composer.singleRoot() }
    }

    /// Every document of `yaml` (`---` separated), in order.
    public static func composeAll(yaml: String) throws(YAML.Error) -> [Node] {
        try withComposer(yaml) { composer throws(YAML.Error) in
            var documents: [Node] = []
            while let root = try composer.nextRoot() { documents.append(root) }
            return documents
        }
    }

    /// Runs `body` with a composer over the UTF-8 bytes of `yaml`, which libyaml reads in place
    /// (so they must outlive the parser), and frees the parser after.
    private static func withComposer<T>(_ yaml: String, _ body: (Composer) throws(YAML.Error) -> T) throws(YAML.Error) -> T {
        var text = yaml
        let result: Result<T, YAML.Error> = text.withUTF8 { bytes in
            let composer = Composer(yaml: yaml, bytes: bytes)
            defer { composer.close() }
            do throws(YAML.Error) {
                try composer.start()
                return .success(try body(composer))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}

/// Builds nodes from libyaml's events as Yams' `Parser` did: tags resolved (`YAML.Tag`), aliases
/// replaced by the node their anchor names (anchors live for the whole stream, a later anchor
/// of the same name wins), a mapping with a key twice refused.
private final class Composer {
    private let yaml: String
    private let parser: UnsafeMutablePointer<yaml_parser_t>
    private var anchors: [String: YAML.Node] = [:]

    /// One event, copied out of libyaml's (which is freed at once).
    private struct Event {
        var type: yaml_event_type_t
        var mark: YAML.Mark
        var anchor: String?
        /// The tag as written (expanded: `!!str` is `tag:yaml.org,2002:str`); nil when implicit.
        var tag: String?
        var value = ""
        var style = YAML.Node.Scalar.Style.any
    }

    init(yaml: String, bytes: UnsafeBufferPointer<UInt8>) {
        self.yaml = yaml
        parser = .allocate(capacity: 1)
        // Fails only when out of memory; the first yaml_parser_parse then reports it.
        _ = yaml_parser_initialize(parser)
        yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
        // libyaml asserts a non-null input, which an empty text may not give.
        yaml_parser_set_input_string(parser, bytes.baseAddress ?? Self.noBytes, bytes.count)
    }

    private nonisolated(unsafe) static let noBytes: UnsafePointer<UInt8> = {
        let byte = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        byte.initialize(to: 0)
        return UnsafePointer(byte)
    }()

    func close() {
        yaml_parser_delete(parser)
        parser.deallocate()
    }

    /// Reads the stream-start event.
    func start() throws(YAML.Error) {
        _ = try next()
    }

    /// The next document's root, or nil at the end of the stream.
    func nextRoot() throws(YAML.Error) -> YAML.Node? {
        guard parser.pointee.stream_end_produced == 0, try next().type != YAML_STREAM_END_EVENT else { return nil }
        return try document()
    }

    /// The root of the only document, or nil when there is none.
    func singleRoot() throws(YAML.Error) -> YAML.Node? {
        guard parser.pointee.stream_end_produced == 0, try next().type != YAML_STREAM_END_EVENT else { return nil }
        let root = try document()
        let event = try next()
        guard event.type == YAML_STREAM_END_EVENT else {
            throw .composer(
                context: .init(text: "expected a single document in the stream", mark: YAML.Mark(line: 1, column: 1)),
                problem: "but found another document", mark: event.mark)
        }
        return root
    }

    // MARK: Nodes

    /// After the document-start event: the root node, then the document-end event.
    private func document() throws(YAML.Error) -> YAML.Node {
        let root = try node(from: next())
        _ = try next()
        return root
    }

    private func node(from event: Event) throws(YAML.Error) -> YAML.Node {
        switch event.type {
        case YAML_ALIAS_EVENT:
            guard let anchor = event.anchor, let node = anchors[anchor] else {
                throw .composer(context: nil, problem: "found undefined alias", mark: event.mark)
            }
            return node
        case YAML_SCALAR_EVENT:
            let tag: YAML.Tag = switch event.tag {
            case nil, "": YAML.Tag.resolving(plain: event.value)
            case "!": .str
            case let written?: YAML.Tag(rawValue: written)
            }
            return register(.scalar(.init(event.value, tag, event.style, event.mark)), as: event.anchor)
        case YAML_SEQUENCE_START_EVENT:
            var items: [YAML.Node] = []
            var item = try next()
            while item.type != YAML_SEQUENCE_END_EVENT {
                items.append(try node(from: item))
                item = try next()
            }
            return register(.sequence(.init(items, Self.tag(event.tag, else: .seq), event.mark)), as: event.anchor)
        case YAML_MAPPING_START_EVENT:
            var pairs: [(YAML.Node, YAML.Node)] = []
            var key = try next()
            while key.type != YAML_MAPPING_END_EVENT {
                let keyNode = try node(from: key)
                let value = try node(from: next())
                pairs.append((keyNode, value))
                key = try next()
            }
            try checkDuplicates(pairs.map(\.0))
            return register(.mapping(.init(pairs, Self.tag(event.tag, else: .map), event.mark)), as: event.anchor)
        default:
            // libyaml emits only node events where a node belongs.
            fatalError("YAML: unexpected libyaml event \(event.type) where a node belongs")
        }
    }

    private static func tag(_ written: String?, else implicit: YAML.Tag) -> YAML.Tag {
        guard let written, !written.isEmpty, written != "!" else { return implicit }
        return YAML.Tag(rawValue: written)
    }

    /// Anchors are registered when their node is complete, so a node cannot contain an alias of itself.
    private func register(_ node: YAML.Node, as anchor: String?) -> YAML.Node {
        if let anchor { anchors[anchor] = node }
        return node
    }

    /// Yams' check: keys equal in text and tag (style aside) more than once; the error lists
    /// them in Yams' order (`YAML.Node.precedes`: scalars by text) and points at the first one's first occurrence.
    private func checkDuplicates(_ keys: [YAML.Node]) throws(YAML.Error) {
        var counts: [YAML.Node: Int] = [:]
        var firsts: [YAML.Node] = []
        for key in keys {
            if counts[key] == nil { firsts.append(key) }
            counts[key, default: 0] += 1
        }
        let duplicates = firsts.filter { counts[$0]! > 1 }.sorted(by: YAML.Node.precedes)
        guard let first = duplicates.first else { return }
        throw .duplicatedKeysInMapping(
            duplicates: duplicates.map(Self.keyText),
            context: .init(text: yaml, mark: first.mark ?? YAML.Mark(line: 0, column: 0)))
    }

    /// A key as Yams named it in the duplicate list.
    private static func keyText(_ key: YAML.Node) -> String {
        switch key {
        case .scalar(let scalar): return scalar.string
        case .mapping(let mapping):
            return mapping.first { $0.key.tag == .value }?.value.scalar?.string ?? "<uncovertable>"
        case .sequence: return "<uncovertable>"
        }
    }

    // MARK: Events

    private func next() throws(YAML.Error) -> Event {
        var raw = yaml_event_t()
        guard yaml_parser_parse(parser, &raw) == 1 else { throw error() }
        defer { yaml_event_delete(&raw) }
        var event = Event(type: raw.type, mark: Self.mark(raw.start_mark))
        switch raw.type {
        case YAML_ALIAS_EVENT:
            event.anchor = Self.string(raw.data.alias.anchor)
        case YAML_SCALAR_EVENT:
            let scalar = raw.data.scalar
            event.anchor = Self.string(scalar.anchor)
            // A quoted (or block) scalar without a tag is a string, as Yams read it.
            event.tag = scalar.quoted_implicit == 1 ? YAML.Tag.str.rawValue : Self.string(scalar.tag)
            // The value may hold NUL characters: its length, not a C string.
            event.value = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            event.style = YAML.Node.Scalar.Style(rawValue: scalar.style.rawValue) ?? .any
        case YAML_SEQUENCE_START_EVENT:
            let start = raw.data.sequence_start
            event.anchor = Self.string(start.anchor)
            event.tag = start.implicit != 0 ? nil : Self.string(start.tag)
        case YAML_MAPPING_START_EVENT:
            let start = raw.data.mapping_start
            event.anchor = Self.string(start.anchor)
            event.tag = start.implicit != 0 ? nil : Self.string(start.tag)
        default:
            break
        }
        return event
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }

    private static func mark(_ mark: yaml_mark_t) -> YAML.Mark {
        YAML.Mark(line: Int(mark.line) + 1, column: Int(mark.column) + 1)
    }

    /// The parser's error, as Yams' `YamlError(from:with:)` made it.
    private func error() -> YAML.Error {
        let state = parser.pointee
        let problem = state.problem.map { String(cString: $0) } ?? ""
        let context = state.context.map {
            YAML.Error.Context(text: String(cString: $0), mark: Self.mark(state.context_mark))
        }
        let mark = Self.mark(state.problem_mark)
        switch state.error {
        case YAML_READER_ERROR:
            // libyaml's offset is in bytes; the error's is in characters.
            let index = yaml.utf8.index(yaml.utf8.startIndex, offsetBy: Int(state.problem_offset), limitedBy: yaml.utf8.endIndex)?
                .samePosition(in: yaml)
            let offset = index.map { yaml.distance(from: yaml.startIndex, to: $0) }
            return .reader(problem: problem, offset: offset, value: state.problem_value)
        case YAML_SCANNER_ERROR: return .scanner(context: context, problem: problem, mark: mark)
        case YAML_PARSER_ERROR: return .parser(context: context, problem: problem, mark: mark)
        case YAML_COMPOSER_ERROR: return .composer(context: context, problem: problem, mark: mark)
        default: return .memory
        }
    }
}
