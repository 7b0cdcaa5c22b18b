#if canImport(Glibc)
import Glibc
#endif

/// Derives the seed of one sensor's random generator from the fleet seed, the device id and the
/// sensor name, so the same fleet file gives the same readings on every run and every machine.
///
/// The algorithm is fixed (never Swift's `Hasher`, which is seeded per process):
/// 1. FNV-1a 64 over, in order: the 8 bytes of `fleetSeed` (little-endian), the UTF-8 bytes of
///    `deviceID`, one `0x00` separator byte, and the UTF-8 bytes of `sensorName`.
/// 2. The splitmix64 finaliser of that hash (`SplitMix64.mix`).
public enum SensorSeed {
    static let fnvOffsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    static let fnvPrime: UInt64 = 0x0000_0100_0000_01b3

    /// - Parameters:
    ///   - fleetSeed: the fleet's `seed`.
    ///   - deviceID: the device id.
    ///   - sensorName: the sensor's name inside its device.
    /// - Returns: a seed for ``SimulatedSensor/init(spec:seed:)``.
    public static func derive(fleetSeed: UInt64, deviceID: String, sensorName: String) -> UInt64 {
        var hash = fnvOffsetBasis
        @inline(__always) func feed(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash = hash &* fnvPrime
        }
        var seed = fleetSeed
        for _ in 0..<8 {
            feed(UInt8(truncatingIfNeeded: seed))
            seed >>= 8
        }
        for byte in deviceID.utf8 { feed(byte) }
        feed(0)
        for byte in sensorName.utf8 { feed(byte) }
        return SplitMix64.mix(hash)
    }
}

/// splitmix64 (Steele, Lea, Flood 2014): used to mix seeds and to fill xoshiro's state.
struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    /// The splitmix64 output function applied to `x + golden gamma`.
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    @inline(__always)
    mutating func next() -> UInt64 {
        let result = Self.mix(state)
        state &+= 0x9e37_79b9_7f4a_7c15
        return result
    }
}

/// xoshiro256** (Blackman, Vigna 2018): small, fast, and good enough for simulated readings.
struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    init(seed: UInt64) {
        var sm = SplitMix64(seed: seed)
        s0 = sm.next()
        s1 = sm.next()
        s2 = sm.next()
        s3 = sm.next()
        // The all-zero state is the one state xoshiro cannot leave; splitmix64 never yields it
        // for four consecutive outputs, but be explicit.
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }
    }

    @inline(__always)
    mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inline(__always)
    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1), 53 random bits.
    @inline(__always)
    mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }
}

extension Xoshiro256StarStar {
    /// A standard normal value (Box–Muller), using both values of each pair: `spare` keeps the
    /// second for the next call. The one gaussian of the sensors, models and faults.
    mutating func nextGaussian(spare: inout Double?) -> Double {
        if let value = spare {
            spare = nil
            return value
        }
        let u1 = 1 - nextUnit()  // (0, 1]: log is finite
        let u2 = nextUnit()
        let r = (-2 * log(u1)).squareRoot()
        let theta = 2 * Double.pi * u2
        spare = r * sin(theta)
        return r * cos(theta)
    }
}
