/// What `validate` says about behaviour: each battery's expected life, and the scenario's events.
public enum BehaviourSummary {
    public static func lines(_ spec: FleetSpec) -> [String] {
        var lines: [String] = []
        let battery = spec.devices.filter { $0.battery != nil }
        for device in battery.prefix(20) {
            guard let b = device.battery else { continue }
            let hours = b.expectedLifeHours(interval: device.interval)
            let life = hours >= 48 ? "\(format(hours / 24)) days" : "\(format(hours)) h"
            lines.append("battery \(device.id): \(format(b.capacityMAh)) mAh at \(format(b.startPercent))%: about \(b.publishesUntilEmpty(interval: device.interval)) readings, \(life) at one every \(format(device.interval)) s (without recharge)")
        }
        if battery.count > 20 { lines.append("battery: \(battery.count - 20) more devices") }
        if let scenario = spec.scenario {
            lines.append("scenario: \(scenario.events.count) event\(scenario.events.count == 1 ? "" : "s") from \(scenario.file)")
            for event in scenario.events.sorted(by: { $0.at < $1.at }) {
                let chosen = event.selection.choose(from: spec.devices, seed: spec.seed, event: event.index)
                lines.append("  t=\(ScenarioAction.format(event.at)) s \(event.action.description) → \(chosen.count) device\(chosen.count == 1 ? "" : "s") (\(event.selection.description))")
            }
        }
        return lines
    }

    static func format(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}
