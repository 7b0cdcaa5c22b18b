
/// fleet.yaml's `labels:` — the file that receives every sensor fault's start and end
/// (``FaultLabelWriter``), relative to the fleet folder.
enum FaultLabelsSetting {
    static func read(_ root: MappingReader, location: FleetLocation) -> String? {
        let fix = "set labels to a file for the fault labels, relative to the fleet folder, e.g. labels.jsonl, or remove it"
        guard let given = root.string("labels", expected: "the path of a JSONL file", fix: fix) else { return nil }
        guard !given.isEmpty else {
            root.problem("labels", "expected the path of a JSONL file, got an empty text", fix: fix)
            return nil
        }
        let resolved = location.resolve(given, in: nil)
        let folder = FleetLocation.deletingLastComponent(resolved.absolute)
        guard FileInfo.isFolder(folder) == true else {
            root.problem("labels", "the folder of \(resolved.display) does not exist",
                         fix: "create the folder \(DataFile.display(folder)), or \(fix)")
            return nil
        }
        if FileInfo.isFolder(resolved.absolute) == true {
            root.problem("labels", "\(resolved.display) is a folder", fix: fix)
            return nil
        }
        return resolved.absolute
    }

    /// `labels_topic`: a topic template (`{id}` replaced per device), e.g. devices/{id}/faults.
    static func readTopic(_ root: MappingReader) -> String? {
        let fix = "set labels_topic to a topic under the device's own, e.g. devices/{id}/faults, or remove it"
        guard let topic = root.string("labels_topic", expected: "an MQTT topic such as devices/{id}/faults", fix: fix) else {
            return nil
        }
        if let problem = TopicRules.problem(with: topic) {
            root.problem("labels_topic", problem, fix: fix)
            return nil
        }
        return topic
    }
}
