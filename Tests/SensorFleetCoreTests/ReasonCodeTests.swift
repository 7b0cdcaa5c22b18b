import MosquittoKit
import Testing

/// Every MQTT 5 reason code in plain words, and a DISCONNECT from the broker reported with its reason.
@Suite struct ReasonCodeTests {
    static let defined = [0x00, 0x01, 0x02, 0x04, 0x10, 0x11, 0x18, 0x19] + Array(0x80...0xA2)

    @Test func everyReasonCodeOfMQTT5HasWords() {
        for code in Self.defined {
            #expect(!MQTTReasonCode.describe(code).hasPrefix("reason code"), "0x\(String(code, radix: 16))")
        }
        #expect(MQTTReasonCode.describe(0x8E).contains("session taken over"))
        #expect(MQTTReasonCode.describe(0xA3) == "reason code 0xa3")
    }

    @Test func aDisconnectFromTheBrokerSaysWhy() {
        let error = MosquittoError(code: MosquittoError.disconnectedByServerCode, reasonCode: 0x8E)
        #expect(error.description.contains("DISCONNECT") && error.description.contains("another client connected with the same client id"))
        #expect(!error.isPermanent)
        #expect(MosquittoError(code: MosquittoError.disconnectedByServerCode, reasonCode: 0x8A).isPermanent)
    }
}
