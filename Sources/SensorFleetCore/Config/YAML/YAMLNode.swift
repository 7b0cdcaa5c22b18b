/// Our YAML reader: libyaml's event parser (the system library, Debian libyaml-dev) and a node
/// tree built from its events, with the tags, marks, anchors and errors Yams gave the fleet
/// loader before (Yams imported Foundation; the agent must not). See `YAML.compose(yaml:)`.
public enum YAML {}

extension YAML {
    /// Where a node or an error is: 1-based line and column (columns count Unicode scalars),
    /// libyaml's 0-based mark plus one, as Yams reported it.
    public struct Mark: Sendable, Hashable, CustomStringConvertible {
        public let line: Int
        public let column: Int

        public init(line: Int, column: Int) {
            self.line = line
            self.column = column
        }

        public var description: String { "\(line):\(column)" }
    }

    /// A node's resolved type: an explicit tag (`!!str 5`), or the one the YAML 1.1 rules give a
    /// plain scalar (`5` is `int`), or `str`/`seq`/`map` for quoted scalars and collections.
    public struct Tag: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String

        public init(rawValue: String) { self.rawValue = rawValue }

        public var description: String { rawValue }

        public static let str = Tag(rawValue: "tag:yaml.org,2002:str")
        public static let seq = Tag(rawValue: "tag:yaml.org,2002:seq")
        public static let map = Tag(rawValue: "tag:yaml.org,2002:map")
        public static let bool = Tag(rawValue: "tag:yaml.org,2002:bool")
        public static let float = Tag(rawValue: "tag:yaml.org,2002:float")
        public static let null = Tag(rawValue: "tag:yaml.org,2002:null")
        public static let int = Tag(rawValue: "tag:yaml.org,2002:int")
        public static let merge = Tag(rawValue: "tag:yaml.org,2002:merge")
        public static let timestamp = Tag(rawValue: "tag:yaml.org,2002:timestamp")
        public static let value = Tag(rawValue: "tag:yaml.org,2002:value")
    }

    /// One node of a document. Aliases are already replaced by the node their anchor names (its
    /// mark is the anchored node's), as Yams' composer did, so there is no alias case.
    public enum Node: Sendable, Hashable {
        case scalar(Scalar)
        case mapping(Mapping)
        case sequence(Sequence)
    }
}

extension YAML.Node {
    /// A scalar: its text as written (quotes and escapes undone), its resolved tag and its style.
    /// Equal scalars have the same text and tag, whatever their style or place.
    public struct Scalar: Sendable, Hashable {
        public var string: String
        public var tag: YAML.Tag
        public var style: Style
        public var mark: YAML.Mark?

        /// libyaml's `yaml_scalar_style_t`, in its order.
        public enum Style: UInt32, Sendable {
            case any = 0
            case plain
            case singleQuoted
            case doubleQuoted
            case literal
            case folded
        }

        public init(_ string: String, _ tag: YAML.Tag, _ style: Style = .any, _ mark: YAML.Mark? = nil) {
            self.string = string
            self.tag = tag
            self.style = style
            self.mark = mark
        }

        public static func == (lhs: Scalar, rhs: Scalar) -> Bool {
            lhs.string == rhs.string && lhs.tag == rhs.tag
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(string)
            hasher.combine(tag)
        }
    }

    /// A mapping: its key/value pairs in the order written.
    public struct Mapping: Sendable, Hashable, RandomAccessCollection {
        public typealias Element = (key: YAML.Node, value: YAML.Node)

        private var keys: [YAML.Node]
        private var values: [YAML.Node]
        public var tag: YAML.Tag
        public var mark: YAML.Mark?

        public init(_ pairs: [(YAML.Node, YAML.Node)], _ tag: YAML.Tag = .map, _ mark: YAML.Mark? = nil) {
            keys = pairs.map(\.0)
            values = pairs.map(\.1)
            self.tag = tag
            self.mark = mark
        }

        public var startIndex: Int { 0 }
        public var endIndex: Int { keys.count }
        public subscript(position: Int) -> Element { (key: keys[position], value: values[position]) }

        /// The value of the last key equal to `key` (as Yams looked keys up).
        public subscript(key: YAML.Node) -> YAML.Node? {
            keys.lastIndex(of: key).map { values[$0] }
        }

        /// The value of the last key that reads as `key` written plain.
        public subscript(key: String) -> YAML.Node? {
            self[.scalar(Scalar(key, YAML.Tag.resolving(plain: key), .plain))]
        }

        public static func == (lhs: Mapping, rhs: Mapping) -> Bool {
            lhs.keys == rhs.keys && lhs.values == rhs.values && lhs.tag == rhs.tag
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(keys)
            hasher.combine(values)
            hasher.combine(tag)
        }
    }

    /// A sequence (a list).
    public struct Sequence: Sendable, Hashable, RandomAccessCollection {
        private var nodes: [YAML.Node]
        public var tag: YAML.Tag
        public var mark: YAML.Mark?

        public init(_ nodes: [YAML.Node], _ tag: YAML.Tag = .seq, _ mark: YAML.Mark? = nil) {
            self.nodes = nodes
            self.tag = tag
            self.mark = mark
        }

        public var startIndex: Int { 0 }
        public var endIndex: Int { nodes.count }
        public subscript(position: Int) -> YAML.Node { nodes[position] }

        public static func == (lhs: Sequence, rhs: Sequence) -> Bool {
            lhs.nodes == rhs.nodes && lhs.tag == rhs.tag
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(nodes)
            hasher.combine(tag)
        }
    }
}

extension YAML.Node {
    /// The resolved tag.
    public var tag: YAML.Tag {
        switch self {
        case .scalar(let scalar): return scalar.tag
        case .mapping(let mapping): return mapping.tag
        case .sequence(let sequence): return sequence.tag
        }
    }

    /// Where the node starts in the text.
    public var mark: YAML.Mark? {
        switch self {
        case .scalar(let scalar): return scalar.mark
        case .mapping(let mapping): return mapping.mark
        case .sequence(let sequence): return sequence.mark
        }
    }

    public var scalar: Scalar? {
        if case .scalar(let scalar) = self { return scalar }
        return nil
    }

    /// The scalar as a whole number (`Int.construct(from:)`), whatever its tag.
    public var int: Int? { scalar.flatMap(Int.construct(from:)) }

    /// The scalar as a number (`Double.construct(from:)`), whatever its tag.
    public var float: Double? { scalar.flatMap(Double.construct(from:)) }

    /// The scalar as true or false (`Bool.construct(from:)`).
    public var bool: Bool? { scalar.flatMap(Bool.construct(from:)) }

    /// In a mapping, the value of `key` (written plain); in a sequence, the item at index `key`.
    public subscript(key: String) -> YAML.Node? {
        switch self {
        case .scalar: return nil
        case .mapping(let mapping): return mapping[key]
        case .sequence(let sequence):
            let index = Int.construct(from: Scalar(key, YAML.Tag.resolving(plain: key), .plain))
            guard let index, sequence.indices.contains(index) else { return nil }
            return sequence[index]
        }
    }

    /// Yams' order of keys, for the list of duplicated keys: scalars by text, collections item
    /// by item; nodes of different kinds are not ordered.
    static func precedes(_ lhs: YAML.Node, _ rhs: YAML.Node) -> Bool {
        func lexicographic(_ lhs: [YAML.Node], _ rhs: [YAML.Node]) -> Bool {
            for (left, right) in zip(lhs, rhs) {
                if precedes(left, right) { return true }
                if precedes(right, left) { return false }
            }
            return lhs.count < rhs.count
        }
        switch (lhs, rhs) {
        case (.scalar(let left), .scalar(let right)): return left.string < right.string
        case (.mapping(let left), .mapping(let right)): return lexicographic(left.map(\.key), right.map(\.key))
        case (.sequence(let left), .sequence(let right)): return lexicographic(Array(left), Array(right))
        default: return false
        }
    }
}

// The config code's names for them (Yams' names, which it was written with).
typealias Node = YAML.Node
typealias Mark = YAML.Mark
