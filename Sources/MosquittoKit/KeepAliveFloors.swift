#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a client knows of libmosquitto's keep-alive clock, so housekeeping can skip
/// `loop_misc` while it cannot act (see `MQTTClient.reactorHousekeeping`).
///
/// `loop_misc` only acts (sends PINGREQ, or drops a connection whose PINGRESP is overdue) once
/// `now ≥ next_msg_out` or `now − last_msg_in ≥ keepalive`, whole seconds of its clock
/// (CLOCK_BOOTTIME), and both timestamps only grow. This keeps lower bounds of both: the connect
/// call sets them; a callback during loop_read proves a packet read; the completion of the last
/// publish proves that packet written after its call.
struct KeepAliveFloors {
    /// Lower bound of libmosquitto's `last_msg_in`.
    private var inFloor = 0
    /// Lower bound of its `next_msg_out − keepalive`.
    private var outFloor = 0
    /// The last publish call: its message id and the second it started.
    private var lastPublishMid: Int32 = 0
    private var lastPublishSecond = 0

    /// Whole seconds of CLOCK_BOOTTIME, the clock of libmosquitto's keep-alive (mosquitto_time).
    static func seconds() -> Int {
        var ts = timespec()
        #if os(Linux)
        clock_gettime(CLOCK_BOOTTIME, &ts)
        #else
        clock_gettime(CLOCK_MONOTONIC, &ts)
        #endif
        return Int(ts.tv_sec)
    }

    /// A connect call is about to start.
    mutating func connecting() {
        inFloor = KeepAliveFloors.seconds()
        outFloor = inFloor
    }

    /// A publish call started at `second` returned `mid` (`succeeded`): its completion proves it
    /// written after.
    mutating func published(mid: Int32, second: Int, succeeded: Bool) {
        guard succeeded else { return }
        lastPublishMid = mid
        lastPublishSecond = second
    }

    /// The last publish was written during its own call (a completion came inside it).
    mutating func lastPublishWritten() { outFloor = max(outFloor, lastPublishSecond) }

    /// Message `mid` completed.
    mutating func completed(mid: Int32) { if mid == lastPublishMid { lastPublishWritten() } }

    /// A loop_read that started at `second` read a whole packet (a callback came): libmosquitto
    /// set `last_msg_in` to its clock after it.
    mutating func packetRead(since second: Int) { inFloor = max(inFloor, second) }

    /// Whether `loop_misc` could act before the housekeeping after this one (one second of
    /// margin: our second may end before libmosquitto reads its clock).
    /// - Parameter keepAlive: the keep-alive in force, seconds; 0: off.
    func mayBeDue(keepAlive: Int) -> Bool {
        if keepAlive <= 0 { return false }
        return KeepAliveFloors.seconds() + 1 >= min(inFloor, outFloor) + keepAlive
    }
}
