#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point on the Earth, in degrees.
public struct GeoPoint: Sendable, Equatable {
    public var latitude: Double
    public var longitude: Double
    public init(latitude: Double, longitude: Double) {
        self.latitude = latitude
        self.longitude = longitude
    }
}

/// `type: route`: a position that follows a polyline at a speed profile.
public struct RouteSpec: Sendable, Equatable {
    /// What happens after the last point.
    public enum AtEnd: String, Sendable, CaseIterable {
        /// Back to the first point along a great circle (nothing to add when the route is
        /// closed), and round again.
        case loop
        /// Stays at the last point, speed 0.
        case stop
        /// Back along the route, and forth again.
        case reverse
    }
    /// The readings a route gives, by their key in the payload.
    public enum Reading: String, Sendable, CaseIterable {
        case latitude, longitude, speed, heading
    }

    public var points: [GeoPoint]
    /// km/h of each segment, in order and round again; one value: a constant speed.
    public var speeds: [Double]
    public var atEnd: AtEnd
    public var readings: [Reading]

    public init(points: [GeoPoint], speeds: [Double], atEnd: AtEnd = .loop, readings: [Reading] = Reading.allCases) {
        self.points = points
        self.speeds = speeds
        self.atEnd = atEnd
        self.readings = readings
    }
}

/// Great-circle arithmetic on a sphere of the Earth's mean radius.
public enum GreatCircle {
    /// IUGG mean Earth radius, metres.
    public static let earthRadius = 6_371_008.8

    @inline(__always) static func radians(_ degrees: Double) -> Double { degrees * .pi / 180 }
    @inline(__always) static func degrees(_ radians: Double) -> Double { radians * 180 / .pi }

    /// Haversine distance in metres.
    public static func distance(_ a: GeoPoint, _ b: GeoPoint) -> Double {
        let phi1 = radians(a.latitude), phi2 = radians(b.latitude)
        let dPhi = phi2 - phi1, dLambda = radians(b.longitude - a.longitude)
        let h = sin(dPhi / 2) * sin(dPhi / 2) + cos(phi1) * cos(phi2) * sin(dLambda / 2) * sin(dLambda / 2)
        return 2 * earthRadius * asin(min(1, h.squareRoot()))
    }

    /// Initial bearing from `a` to `b`, degrees clockwise from north in [0, 360).
    public static func bearing(_ a: GeoPoint, _ b: GeoPoint) -> Double {
        let phi1 = radians(a.latitude), phi2 = radians(b.latitude), dLambda = radians(b.longitude - a.longitude)
        let y = sin(dLambda) * cos(phi2)
        let x = cos(phi1) * sin(phi2) - sin(phi1) * cos(phi2) * cos(dLambda)
        var theta = degrees(atan2(y, x))
        if theta < 0 { theta += 360 }
        return theta >= 360 ? 0 : theta
    }

    /// The point a fraction `f` of the way from `a` to `b` along the great circle.
    public static func interpolate(_ a: GeoPoint, _ b: GeoPoint, _ f: Double) -> GeoPoint {
        let delta = distance(a, b) / earthRadius
        guard delta > 1e-15 else { return a }
        let phi1 = radians(a.latitude), lambda1 = radians(a.longitude)
        let phi2 = radians(b.latitude), lambda2 = radians(b.longitude)
        let wa = sin((1 - f) * delta) / sin(delta), wb = sin(f * delta) / sin(delta)
        let x = wa * cos(phi1) * cos(lambda1) + wb * cos(phi2) * cos(lambda2)
        let y = wa * cos(phi1) * sin(lambda1) + wb * cos(phi2) * sin(lambda2)
        let z = wa * sin(phi1) + wb * sin(phi2)
        return GeoPoint(latitude: degrees(atan2(z, (x * x + y * y).squareRoot())), longitude: degrees(atan2(y, x)))
    }
}

/// A route being driven. `speed` is the great-circle distance from the previous reading's
/// position divided by the time between them (so it matches the movement a receiver of the
/// telemetry computes), and `heading` the initial bearing of that movement; at the first reading,
/// and while standing still, they are the profile's speed (0 when stopped) and the segment's
/// bearing.
final class RouteModel {
    let spec: RouteSpec
    private var starts: [GeoPoint] = []
    private var ends: [GeoPoint] = []
    /// Seconds at which each segment begins; `total` after the last.
    private var beginsAt: [Double] = []
    private var durations: [Double] = []
    private var speedsMS: [Double] = []
    private(set) var total: Double = 0
    private var previous: (elapsed: Double, point: GeoPoint)?
    private var lastHeading = 0.0

    init(spec: RouteSpec) {
        self.spec = spec
        var points = spec.points
        if spec.atEnd == .loop, let first = points.first, let last = points.last, first != last {
            points.append(first)
        }
        var time = 0.0
        var index = 0
        for (a, b) in zip(points, points.dropFirst()) {
            defer { index += 1 }
            let length = GreatCircle.distance(a, b)
            guard length > 0 else { continue }
            let kmh = spec.speeds.isEmpty ? 0 : spec.speeds[index % spec.speeds.count]
            let ms = max(kmh, 1e-9) / 3.6
            starts.append(a)
            ends.append(b)
            beginsAt.append(time)
            durations.append(length / ms)
            speedsMS.append(ms)
            time += length / ms
        }
        total = time
        if let a = starts.first, let b = ends.first { lastHeading = GreatCircle.bearing(a, b) }
    }

    /// Where the route puts the device `t` seconds after the start, the segment's speed (m/s,
    /// 0 when stopped) and its bearing in the direction of travel.
    func position(at t: Double) -> (point: GeoPoint, speed: Double, bearing: Double) {
        guard total > 0, t.isFinite, !starts.isEmpty else {
            let point = spec.points.first ?? GeoPoint(latitude: 0, longitude: 0)
            return (point, 0, 0)
        }
        var time = max(0, t)
        var backwards = false
        switch spec.atEnd {
        case .loop:
            time = time.truncatingRemainder(dividingBy: total)
        case .stop:
            if time >= total {
                let i = starts.count - 1
                return (ends[i], 0, GreatCircle.bearing(starts[i], ends[i]))
            }
        case .reverse:
            time = time.truncatingRemainder(dividingBy: 2 * total)
            if time > total {
                time = 2 * total - time
                backwards = true
            }
        }
        // The last segment that begins at or before `time`.
        var lo = 0, hi = beginsAt.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if beginsAt[mid] <= time { lo = mid } else { hi = mid - 1 }
        }
        let i = lo
        let f = min(1, max(0, (time - beginsAt[i]) / durations[i]))
        let point = f == 0 ? starts[i] : (f == 1 ? ends[i] : GreatCircle.interpolate(starts[i], ends[i], f))
        let bearing = backwards ? GreatCircle.bearing(ends[i], starts[i]) : GreatCircle.bearing(starts[i], ends[i])
        return (point, speedsMS[i], bearing)
    }

    /// Appends the route's readings at `elapsed` seconds.
    func read(elapsed: Double, into readings: inout [(name: String, value: Double)], precision: Int?) {
        let here = position(at: elapsed)
        var speedMS = here.speed
        var heading = here.bearing
        if let previous, elapsed > previous.elapsed {
            let moved = GreatCircle.distance(previous.point, here.point)
            speedMS = moved / (elapsed - previous.elapsed)
            heading = moved > 1e-6 ? GreatCircle.bearing(previous.point, here.point) : (here.speed > 0 ? here.bearing : lastHeading)
        }
        previous = (elapsed, here.point)
        lastHeading = heading
        for reading in spec.readings {
            let value: Double
            switch reading {
            case .latitude: value = here.point.latitude
            case .longitude: value = here.point.longitude
            case .speed: value = speedMS * 3.6
            case .heading: value = heading
            }
            readings.append((reading.rawValue, SensorFaults.rounded(value, precision)))
        }
    }
}
