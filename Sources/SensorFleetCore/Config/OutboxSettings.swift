/// Reads `outbox:` of fleet.yaml.
enum OutboxSettings {
    static let keys = ["max_messages", "max_bytes", "when_full", "ttl", "ack_timeout", "backlog_rate"]

    static func read(_ map: MappingReader, into outbox: inout OutboxSpec) {
        map.rejectUnknownKeys(allowed: keys)
        if let count = map.integer("max_messages", in: .outboxMessages,
                                   fix: "set outbox.max_messages to how many messages a device may queue, e.g. 1000") {
            outbox.maxMessages = count
        }
        if let bytes = map.integer("max_bytes", in: .outboxBytes,
                                   fix: "set outbox.max_bytes to how many payload bytes a device may queue, e.g. 1048576 (1 MiB)") {
            outbox.maxBytes = bytes
        }
        let policies = OutboxFullPolicy.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or ")
        if let text = map.string("when_full", expected: policies,
                                 fix: "set outbox.when_full to drop_oldest (default) or refuse_newest") {
            if let policy = OutboxFullPolicy(rawValue: text) {
                outbox.whenFull = policy
            } else {
                map.problem("when_full", "expected \(policies), got \"\(SettingText.clipped(text))\"",
                            fix: "set outbox.when_full to drop_oldest (evict the oldest message) or refuse_newest (keep the queue, refuse the new message)")
            }
        }
        if let ttl = map.number("ttl", in: .ttl,
                                fix: "set outbox.ttl to how long a message may wait, e.g. 3600, or remove it to keep messages until delivered or evicted") {
            outbox.ttl = ttl
        }
        if let timeout = map.number("ack_timeout", in: .ackTimeout,
                                    fix: "set outbox.ack_timeout to how long a PUBACK may take, e.g. 30 (default: broker.keepalive)") {
            outbox.ackTimeout = timeout
        }
        if let rate = map.number("backlog_rate", in: .messageRate,
                                 fix: "set outbox.backlog_rate to how fast a device sends a backlog left by an earlier run, e.g. 100") {
            outbox.backlogRate = rate
        }
    }
}
