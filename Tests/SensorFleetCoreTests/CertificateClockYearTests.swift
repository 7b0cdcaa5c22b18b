import Foundation
import Testing
@testable import SensorFleetCore

@Suite("the agent's clock check without Calendar (issue 15: no ICU on the agent's path)")
struct CertificateClockYearTests {
    @Test("1 January of a year, 00:00 UTC, in seconds since 1970: the same as glibc's timegm, leap centuries included")
    func startOfYearMatchesTimegm() {
        for year in [1970, 1971, 1972, 2000, 2023, 2024, 2025, 2100, 2400, 2401] {
            var parts = tm()
            parts.tm_year = Int32(year - 1900)
            parts.tm_mday = 1
            #expect(CertificateClock.secondsSinceEpoch(startOfYear: year) == timegm(&parts), "year \(year)")
        }
    }

    @Test("the last second of the year before saneYear is not sane, its first second is")
    func saneYearEdge() {
        let start = Double(CertificateClock.secondsSinceEpoch(startOfYear: CertificateClock.saneYear))
        #expect(!CertificateClock.isSane(Date(timeIntervalSince1970: start - 1)))
        #expect(CertificateClock.isSane(Date(timeIntervalSince1970: start)))
    }
}
