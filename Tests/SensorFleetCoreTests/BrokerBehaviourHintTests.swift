import MosquittoKit
import SensorFleetTesting
import Testing

/// MosquittoError's diagnosis of brokers that close instead of answering, keyed on what the
/// client was doing (MosquittoError.Context).
@Suite struct BrokerBehaviourHintTests {
    @Test func mqtt5ClosedBeforeCONNACKSaysSetTheProtocol() {
        let error = MosquittoError(code: MosquittoError.connectionLostCode,
                                   context: .init(mqtt5: true, closedBeforeCONNACK: true))
        #expect(error.hint?.contains("closed the connection right after CONNECT at MQTT 5") == true)
        #expect(error.hint?.contains("broker.protocol: \"3.1.1\"") == true)
        #expect(error.description.contains("RabbitMQ"))
        #expect(!error.isPermanent)
    }

    @Test func mqtt5WithoutAnswerSaysTheSame() {
        let error = MosquittoError(code: MosquittoError.connectTimeoutCode,
                                   context: .init(mqtt5: true, closedBeforeCONNACK: true))
        #expect(error.hint?.contains("never answered CONNECT at MQTT 5") == true)
    }

    @Test func theSameCloseAtMQTT311OrBeforeTLSIsNotBlamedOnMQTT5() {
        #expect(MosquittoError(code: MosquittoError.connectionLostCode, context: .init(mqtt5: false, closedBeforeCONNACK: true)).hint == nil)
        #expect(MosquittoError(code: MosquittoError.connectionLostCode, context: .init(mqtt5: true, closedBeforeCONNACK: false)).hint == nil)
        // A TLS alert says more than the timing.
        let alert = MosquittoError(code: MosquittoError.connectionLostCode, detail: "SSL routines::tlsv1 alert unknown ca",
                                   context: .init(mqtt5: true, closedBeforeCONNACK: true))
        #expect(alert.hint?.contains("does not trust the CA") == true)
    }

    @Test func closeRightAfterAPublishNamesTheTopicAndTheACL() {
        let error = MosquittoError(code: MosquittoError.connectionLostCode,
                                   context: .init(closedAfterPublishTo: "devices/d-1/telemetry"))
        #expect(error.hint?.contains("right after a PUBLISH to devices/d-1/telemetry") == true)
        #expect(error.hint?.contains("ACL") == true)
        #expect(MosquittoError(code: MosquittoError.connectRefusedCode, reasonCode: 0x87,
                               context: .init(closedAfterPublishTo: "x")).hint == nil)
    }

    @Test func anEncryptedKeyAtConnectTimeIsNamed() {
        let error = MosquittoError(code: 8, detail: "cannot load private key k.pem: error:1C800064:Provider routines::bad decrypt")
        #expect(error.hint?.contains("encrypted") == true)
    }
}
