/// A device's MQTT password: it never shows itself in a description, a log line or a report.
public struct MQTTPassword: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The password itself: handed to libmosquitto and nowhere else.
    public let value: String

    public init(_ value: String) { self.value = value }

    public var description: String { "<password>" }
    public var debugDescription: String { "<password>" }
}
