/// Receives a client's events, on its reactor thread.
public protocol MQTTClientDelegate: AnyObject {
    /// CONNACK with success.
    func clientDidConnect(_ client: MQTTClient, sessionPresent: Bool)
    /// The connection (or the attempt at one) is over. `error` is nil after our own clean
    /// disconnect. Called exactly once for every `connect()`.
    func clientDidClose(_ client: MQTTClient, error: MosquittoError?)
    /// PUBACK for QoS 1 (reason code ≥ 0x80 is a refusal at MQTT 5), or written out for QoS 0.
    func client(_ client: MQTTClient, didCompletePublish messageID: Int32, reasonCode: Int)
    /// A message on a subscribed topic.
    func client(_ client: MQTTClient, didReceive topic: String, payload: UnsafeRawBufferPointer)
    /// A message on a subscribed topic with its MQTT 5 request/response properties (nil at
    /// 3.1.1 or when absent). By default forwards to `client(_:didReceive:payload:)`.
    func client(_ client: MQTTClient, didReceive topic: String, payload: UnsafeRawBufferPointer,
                responseTopic: String?, correlationData: [UInt8]?)
    /// SUBACK for `subscribeForAck`: the granted QoS per topic, in the order subscribed; 0x80
    /// or more is a refusal (3.1.1: 0x80 failure; 5: a reason code such as 0x87 not authorised).
    /// By default ignored.
    func client(_ client: MQTTClient, didSubscribe messageID: Int32, grantedQoS: [Int])
}

extension MQTTClientDelegate {
    public func client(_ client: MQTTClient, didSubscribe messageID: Int32, grantedQoS: [Int]) {}

    public func client(_ client: MQTTClient, didReceive topic: String, payload: UnsafeRawBufferPointer,
                       responseTopic: String?, correlationData: [UInt8]?) {
        self.client(client, didReceive: topic, payload: payload)
    }
}
