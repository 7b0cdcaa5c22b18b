/// A device that speaks Sparkplug B (Eclipse Sparkplug 3.0) instead of SensorFleet's JSON:
/// `payload: sparkplug_b` with `sparkplug: {group_id, edge_node_id}` in device.yaml or under
/// fleet.yaml's `defaults:`.
///
/// Each SensorFleet device is one Sparkplug **edge node** whose sensors are node metrics: it
/// publishes NBIRTH, NDATA and (as its will, or before a clean DISCONNECT) NDEATH, and listens on
/// NCMD. A simulated device is one MQTT client with its own certificate, and so is an edge node;
/// Sparkplug devices (DBIRTH/DDATA/DDEATH/DCMD) behind an edge node would only add a level that
/// nothing here fills.
public struct SparkplugSettings: Sendable, Equatable {
    /// The Sparkplug group (`group_id`), the second topic level.
    public var groupID: String
    /// The edge node id with `{id}` replaced (`edge_node_id`, default `{id}`).
    public var edgeNodeID: String

    public init(groupID: String, edgeNodeID: String) {
        self.groupID = groupID
        self.edgeNodeID = edgeNodeID
    }

    /// The Sparkplug B namespace, the first topic level.
    public static let namespace = "spBv1.0"

    /// The message types of the namespace; the device-level ones are listed for completeness.
    public enum MessageType: String, Sendable, CaseIterable {
        case nbirth = "NBIRTH", ndeath = "NDEATH", dbirth = "DBIRTH", ddeath = "DDEATH"
        case ndata = "NDATA", ddata = "DDATA", ncmd = "NCMD", dcmd = "DCMD"
    }

    /// `spBv1.0/{group_id}/{type}/{edge_node_id}`.
    public func topic(_ type: MessageType) -> String {
        "\(Self.namespace)/\(groupID)/\(type.rawValue)/\(edgeNodeID)"
    }

    /// Why `value` cannot be a group or edge node id, or nil when it can: Sparkplug ids are one
    /// topic level of UTF-8 without `/`, `+` or `#`.
    static func problem(with value: String) -> String? {
        if value.isEmpty { return "it is empty" }
        if value.contains("/") || value.contains("+") || value.contains("#") {
            return "it contains `/`, `+` or `#`, which a Sparkplug id may not hold (it is one topic level)"
        }
        if value.contains("\u{0}") { return "it contains a NUL character" }
        if value.utf8.count > 1000 { return "it is longer than 1000 bytes" }
        return nil
    }
}
