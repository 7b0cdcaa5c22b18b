import Foundation

/// One record of a fault labels file (fleet.yaml's `labels:`), as the tests read it.
public struct LabelRecord: Equatable, Sendable {
    /// `start` or `end`.
    public var event: String
    public var device: String
    public var sensor: String
    public var fault: String
    /// `fault_no`: the n-th fault of this sensor.
    public var number: Int
    /// A start's `seq`, an end's `start_seq`.
    public var startSeq: UInt64
    /// An end's `end_seq` (the last faulty reading); nil for a start.
    public var endSeq: UInt64?
    /// A start's `source`: `faults[i]` or `runtime`.
    public var source: String?
    /// An end written because the device went away with the fault still on.
    public var stillOn: Bool

    public init(event: String, device: String, sensor: String, fault: String, number: Int, startSeq: UInt64,
                endSeq: UInt64?, source: String?, stillOn: Bool) {
        self.event = event
        self.device = device
        self.sensor = sensor
        self.fault = fault
        self.number = number
        self.startSeq = startSeq
        self.endSeq = endSeq
        self.source = source
        self.stillOn = stillOn
    }

    /// Every record of the file (none when it does not exist); throws on a line that is not a
    /// whole record.
    public static func read(_ path: String) throws -> [LabelRecord] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return try text.split(separator: "\n").map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let event = object["event"] as? String, let device = object["device"] as? String,
                  let sensor = object["sensor"] as? String, let fault = object["fault"] as? String,
                  let number = object["fault_no"] as? Int,
                  let start = (event == "start" ? object["seq"] : object["start_seq"]) as? Int
            else { throw TestFailure("not a label record: \(line)") }
            return LabelRecord(event: event, device: device, sensor: sensor, fault: fault, number: number,
                               startSeq: UInt64(start), endSeq: (object["end_seq"] as? Int).map(UInt64.init),
                               source: object["source"] as? String, stillOn: object["still_on"] as? Bool ?? false)
        }
    }
}
