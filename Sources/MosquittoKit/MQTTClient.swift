internal import CMosquitto
internal import CSocketpairGuard
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One libmosquitto client (`struct mosquitto *`), owned by one reactor. Create it, use it and
/// close it on that reactor's thread only.
public final class MQTTClient: ReactorSource {
    public enum State: Sendable, Equatable { case idle, connecting, connected, disconnecting }

    public private(set) var options: MQTTClientOptions
    public unowned let reactor: Reactor
    public weak var delegate: MQTTClientDelegate?
    public private(set) var state: State = .idle
    /// When the current connection attempt started (monotonic ns).
    public private(set) var connectStartedAt = MonotonicInstant.zero

    private let handle: OpaquePointer
    private var slot = -1
    private var registered = false
    private var registeredEvents = ReactorEvents()
    private var inLoop = false
    private var closeRC: Int32?
    private var refusal: Int?
    private var lastLog: String?
    private var timedOut = false
    private var forcedDetail: String?
    private var inPublish = false
    /// A buffering BIO is in front of the socket on this connection (see `flushWrites`).
    private var batching = false
    /// The read filter (CMosquitto_install_read_filter) is in front of the socket on this connection.
    private var readFilter = false
    private var isDirty = false
    /// Keep-alive bookkeeping (see `reactorHousekeeping`), and how many callbacks have come.
    private var keepAliveFloors = KeepAliveFloors()
    private var callbacksSeen: UInt32 = 0
    private var earlyCompletions: [(Int32, Int32)] = []
    private var destroyed = false
    /// For the diagnosis of a close (MosquittoError.Context): the TLS handshake of this attempt
    /// finished; the first publish of this connection (monotonic ns) and the last topic.
    private var tlsEstablished = false
    private var firstPublishAt: MonotonicInstant?
    private var lastPublishTopic: String?
    /// The reason code of a DISCONNECT the broker sent (MQTT 5), for this connection.
    private var serverDisconnectReason: Int?

    /// What the broker's CONNACK said (MQTT 5), for the current connection.
    public struct ConnackProperties: Sendable, Equatable {
        /// Keep-alive the broker imposes instead of ours.
        public var serverKeepAlive: Int?
        /// Client id the broker assigned (when we sent none).
        public var assignedClientID: String?
        /// How many QoS 1/2 messages the broker accepts in flight (libmosquitto caps its own
        /// window to it).
        public var receiveMaximum: Int?
        /// Session expiry the broker grants instead of ours.
        public var sessionExpiry: UInt32?
        /// Topic aliases the broker accepts from us (0 or absent: none).
        public var topicAliasMaximum: Int?
    }
    /// Topic alias 1 is set up on this connection for this topic (sent once with the topic).
    private var aliasedTopic: String?
    /// `properties` + topic alias 1, built on first use for the properties in use.
    private var aliasList: OpaquePointer?
    private weak var aliasListSource: MQTTPublishProperties?
    private var aliasListBuilt = false
    public private(set) var connack = ConnackProperties()

    /// - Throws: when libmosquitto cannot create the client or takes none of the options.
    public init(reactor: Reactor, options: MQTTClientOptions) throws(MosquittoError) {
        precondition(reactor.isCurrent, "MQTTClient must be created on its reactor's thread")
        self.reactor = reactor
        self.options = options
        // With DescriptorBudget.singleDescriptorClients on, the socketpair libmosquitto opens
        // here (two descriptors an external loop never uses) is refused; it carries on without.
        SocketpairGuard_begin()
        let created = mosquitto_new(options.clientID, options.cleanSession, nil)
        SocketpairGuard_end()
        guard let handle = created else {
            throw MosquittoError(code: Int32(MOSQ_ERR_NOMEM.rawValue), detail: "mosquitto_new failed for \(options.clientID)")
        }
        self.handle = handle
        func check(_ rc: Int32, _ what: String) throws(MosquittoError) {
            if rc != Int32(MOSQ_ERR_SUCCESS.rawValue) {
                mosquitto_destroy(handle)
                throw MosquittoError(code: rc, detail: what)
            }
        }
        try check(mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, options.useMQTT5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311), "protocol version")
        if let tls = options.tls {
            try check(mosquitto_void_option(handle, MOSQ_OPT_SSL_CTX, UnsafeMutableRawPointer(tls.ctx)), "TLS context")
            try check(mosquitto_int_option(handle, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0), "TLS context defaults")
        }
        try check(mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1), "TCP_NODELAY")
        try check(mosquitto_int_option(handle, MOSQ_OPT_SEND_MAXIMUM, Int32(max(1, min(65535, options.maxInflight)))), "send maximum")
        if let username = options.username {
            try check(mosquitto_username_pw_set(handle, username, options.password), "user name and password")
        }
        if let will = options.will {
            let rc = will.payload.withUnsafeBytes { raw in
                mosquitto_will_set(handle, will.topic, Int32(raw.count), raw.baseAddress, Int32(will.qos), will.retain)
            }
            try check(rc, "will on \(will.topic)")
        }
        mosquitto_connect_v5_callback_set(handle, onConnect)
        mosquitto_disconnect_v5_callback_set(handle, onDisconnect)
        mosquitto_publish_v5_callback_set(handle, onPublish)
        mosquitto_message_v5_callback_set(handle, onMessage)
        mosquitto_subscribe_v5_callback_set(handle, onSubscribe)
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        slot = reactor.register(self)
    }

    deinit {
        if !destroyed { mosquitto_destroy(handle) }
        mosquitto_property_free_all(&aliasList)
    }

    public var isConnected: Bool { state == .connected }

    /// Starts connecting (TCP, TLS, CONNECT) without blocking. The outcome arrives as
    /// `clientDidConnect` or `clientDidClose`.
    public func connect() {
        precondition(state == .idle && !destroyed, "connect() while \(state)")
        state = .connecting
        connectStartedAt = MonotonicInstant.now()
        keepAliveFloors.connecting()
        closeRC = nil
        refusal = nil
        lastLog = nil
        timedOut = false
        forcedDetail = nil
        tlsEstablished = false
        firstPublishAt = nil
        lastPublishTopic = nil
        serverDisconnectReason = nil
        connack = ConnackProperties()
        aliasedTopic = nil
        _ = options.tls?.takeVerifyError()
        // The log callback formats every libmosquitto log line; we want its TLS reasons only
        // while connecting, so it is on until CONNACK.
        mosquitto_log_callback_set(handle, onLog)
        let rc: Int32
        inLoop = true
        // The SSL libmosquitto makes inside this call takes this device's identity (TLSSharedContext.swift).
        TLSContext.connecting(options.tls)
        // connect_bind_async = set host, then libmosquitto's reconnect on the same handle, which
        // keeps (and re-sends) the QoS 1 messages it holds.
        if options.useMQTT5, let expiry = options.sessionExpiry, expiry > 0 {
            // Only mosquitto_connect_bind_v5 takes CONNECT properties in 2.0.11, and it connects
            // TCP blocking: ConnectGuard makes that connect() non-blocking (EINPROGRESS), after
            // which it goes on as connect_bind_async does. DNS is already resolved (host is an address).
            var properties: OpaquePointer?
            defer { mosquitto_property_free_all(&properties) }
            let added = mosquitto_property_add_int32(&properties, Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue), expiry)
            if added != Int32(MOSQ_ERR_SUCCESS.rawValue) {
                rc = added
            } else {
                ConnectGuard_begin()
                rc = mosquitto_connect_bind_v5(handle, options.host, Int32(options.port), Int32(options.keepAlive),
                                               options.bindAddress, properties)
                ConnectGuard_end()
            }
        } else {
            rc = mosquitto_connect_bind_async(handle, options.host, Int32(options.port), Int32(options.keepAlive), options.bindAddress)
        }
        let callErrno = CMosquitto_errno()
        TLSContext.connecting(nil)
        inLoop = false
        // libmosquitto opens the socket without close-on-exec: a process we spawn later must
        // not inherit it (SpawnActions closes what a spawn of ours would; this covers others).
        if mosquitto_socket(handle) >= 0 { _ = fcntl(mosquitto_socket(handle), F_SETFD, FD_CLOEXEC) }
        if rc == Int32(MOSQ_ERR_ERRNO.rawValue), let bind = options.bindAddress,
           [EADDRNOTAVAIL, EINVAL, EAFNOSUPPORT].contains(callErrno) {
            // bind() failed before any packet left: the source address, not the broker, is wrong.
            forcedDetail = SourceAddress.describe(bind, errno: callErrno)
        }
        afterOperation(rc)
    }

    /// Publishes; returns libmosquitto's message id. Reactor thread only.
    public func publish(topic: String, payload: UnsafeRawBufferPointer, qos: Int, retain: Bool = false) -> Result<Int32, MosquittoError> {
        notePublish(topic)
        var mid: Int32 = 0
        let second = KeepAliveFloors.seconds()
        inPublish = true
        let rc = mosquitto_publish(handle, &mid, topic, Int32(payload.count), payload.baseAddress, Int32(qos), retain)
        inPublish = false
        keepAliveFloors.published(mid: mid, second: second, succeeded: rc == Int32(MOSQ_ERR_SUCCESS.rawValue))
        deliverEarlyCompletions()
        if batching { markDirty() }
        if !inLoop { updateInterest() }
        if rc == Int32(MOSQ_ERR_SUCCESS.rawValue) { return .success(mid) }
        return .failure(MosquittoError(code: rc))
    }

    /// Publishes with MQTT 5 properties built once (`properties`) and, with `topicAlias`, topic
    /// alias 1 for `topic`: the first PUBLISH of a connection carries the topic and the alias,
    /// the next ones the alias only. Use aliases at QoS 0 only: libmosquitto 2.0.11 re-sends an
    /// unacknowledged message as first written, alias only, which the broker does not know on a
    /// new connection. At 3.1.1, or when the broker takes no alias, the plain publish.
    public func publish(topic: String, payload: UnsafeRawBufferPointer, qos: Int, retain: Bool = false,
                        properties: MQTTPublishProperties?, topicAlias: Bool) -> Result<Int32, MosquittoError> {
        guard options.useMQTT5 else { return publish(topic: topic, payload: payload, qos: qos, retain: retain) }
        let useAlias = topicAlias && (connack.topicAliasMaximum ?? 0) >= 1
        guard useAlias || !(properties?.isEmpty ?? true) else {
            return publish(topic: topic, payload: payload, qos: qos, retain: retain)
        }
        var list = properties?.list
        if useAlias {
            if !aliasListBuilt || aliasListSource !== properties {
                mosquitto_property_free_all(&aliasList)
                if let source = properties?.list {
                    let rc = mosquitto_property_copy_all(&aliasList, source)
                    if rc != Int32(MOSQ_ERR_SUCCESS.rawValue) { return .failure(MosquittoError(code: rc, detail: "properties")) }
                }
                let rc = mosquitto_property_add_int16(&aliasList, Int32(MQTT_PROP_TOPIC_ALIAS.rawValue), 1)
                if rc != Int32(MOSQ_ERR_SUCCESS.rawValue) { return .failure(MosquittoError(code: rc, detail: "topic alias")) }
                aliasListSource = properties
                aliasListBuilt = true
            }
            list = aliasList
        }
        notePublish(topic)
        var mid: Int32 = 0
        inPublish = true
        let sendTopic: String? = useAlias && aliasedTopic == topic ? nil : topic
        let second = KeepAliveFloors.seconds()
        let rc = mosquitto_publish_v5(handle, &mid, sendTopic, Int32(payload.count), payload.baseAddress, Int32(qos), retain, list)
        inPublish = false
        keepAliveFloors.published(mid: mid, second: second, succeeded: rc == Int32(MOSQ_ERR_SUCCESS.rawValue))
        if rc == Int32(MOSQ_ERR_SUCCESS.rawValue), useAlias { aliasedTopic = topic }
        deliverEarlyCompletions()
        if batching { markDirty() }
        if !inLoop { updateInterest() }
        if rc == Int32(MOSQ_ERR_SUCCESS.rawValue) { return .success(mid) }
        return .failure(MosquittoError(code: rc))
    }

    /// Publishes with MQTT 5 correlation data (a reply to a request); at 3.1.1 the data is
    /// left out. Reactor thread only.
    public func publish(topic: String, payload: UnsafeRawBufferPointer, qos: Int, retain: Bool = false,
                        correlationData: [UInt8]?) -> Result<Int32, MosquittoError> {
        guard options.useMQTT5, let correlationData, !correlationData.isEmpty else {
            return publish(topic: topic, payload: payload, qos: qos, retain: retain)
        }
        var properties: OpaquePointer?
        defer { mosquitto_property_free_all(&properties) }
        let added = correlationData.withUnsafeBytes { raw in
            mosquitto_property_add_binary(&properties, Int32(MQTT_PROP_CORRELATION_DATA.rawValue), raw.baseAddress, UInt16(min(raw.count, 65535)))
        }
        if added != Int32(MOSQ_ERR_SUCCESS.rawValue) { return .failure(MosquittoError(code: added, detail: "correlation data")) }
        notePublish(topic)
        var mid: Int32 = 0
        let rc = mosquitto_publish_v5(handle, &mid, topic, Int32(payload.count), payload.baseAddress, Int32(qos), retain, properties)
        if batching { markDirty() }
        if !inLoop { updateInterest() }
        if rc == Int32(MOSQ_ERR_SUCCESS.rawValue) { return .success(mid) }
        return .failure(MosquittoError(code: rc))
    }

    /// A QoS 0 message written at once completes inside mosquitto_publish, before the caller
    /// knows its id: hand the completions over after the call returns.
    private func deliverEarlyCompletions() {
        guard !earlyCompletions.isEmpty else { return }
        // Written during the publish call: libmosquitto's next_msg_out moved past its start.
        keepAliveFloors.lastPublishWritten()
        let completions = earlyCompletions
        earlyCompletions.removeAll()
        reactor.deferToNextTurn { [weak self] in
            guard let self, !self.destroyed else { return }
            for (mid, reason) in completions {
                self.delegate?.client(self, didCompletePublish: mid, reasonCode: Int(reason))
            }
        }
    }

    /// Connects to `host` (a fresh address of the same broker) from the next `connect()` on.
    public func retarget(host: String) {
        options.host = host
    }

    /// Uses `tls` (a reloaded certificate and key) from the next connect on; the current
    /// connection, if any, keeps its session. libmosquitto keeps its QoS 1 queue.
    public func replaceTLS(_ tls: TLSContext) -> MosquittoError? {
        let rc = mosquitto_void_option(handle, MOSQ_OPT_SSL_CTX, UnsafeMutableRawPointer(tls.ctx))
        guard rc == Int32(MOSQ_ERR_SUCCESS.rawValue) else { return MosquittoError(code: rc, detail: "TLS context") }
        options.tls = tls
        return nil
    }

    /// Replaces the will the next CONNECT carries (libmosquitto sends the one set last with every
    /// CONNECT): Sparkplug B's NDEATH names a new `bdSeq` for each connection. While idle only.
    public func setWill(_ will: MQTTWill) -> MosquittoError? {
        precondition(state == .idle && !destroyed, "setWill() while \(state)")
        let rc = will.payload.withUnsafeBytes { raw in
            mosquitto_will_set(handle, will.topic, Int32(raw.count), raw.baseAddress, Int32(will.qos), will.retain)
        }
        guard rc == Int32(MOSQ_ERR_SUCCESS.rawValue) else { return MosquittoError(code: rc, detail: "will on \(will.topic)") }
        options.will = will
        return nil
    }

    /// Subscribes; the SUBACK is not reported separately.
    @discardableResult
    public func subscribe(_ pattern: String, qos: Int) -> MosquittoError? {
        let rc = mosquitto_subscribe(handle, nil, pattern, Int32(qos))
        if batching { markDirty() }
        if !inLoop { updateInterest() }
        return rc == Int32(MOSQ_ERR_SUCCESS.rawValue) ? nil : MosquittoError(code: rc)
    }

    /// Subscribes and returns the message id its SUBACK will carry
    /// (`client(_:didSubscribe:grantedQoS:)`): how a subscriber learns that the broker refused a
    /// subscription (ACL) instead of waiting for messages that never come.
    public func subscribeForAck(_ pattern: String, qos: Int) -> Result<Int32, MosquittoError> {
        var mid: Int32 = 0
        let rc = mosquitto_subscribe(handle, &mid, pattern, Int32(qos))
        if batching { markDirty() }
        if !inLoop { updateInterest() }
        return rc == Int32(MOSQ_ERR_SUCCESS.rawValue) ? .success(mid) : .failure(MosquittoError(code: rc))
    }

    private func notePublish(_ topic: String) {
        if firstPublishAt == nil { firstPublishAt = .now() }
        lastPublishTopic = topic
    }

    /// Sends DISCONNECT (the broker then drops the will). `clientDidClose(nil)` follows when the
    /// broker closes the connection.
    ///
    /// Outside a libmosquitto callback, `mosquitto_disconnect` writes the DISCONNECT and closes
    /// the socket at once: `afterOperation` notices it now. (It used to be noticed only by the
    /// next housekeeping, up to a second later, whose `loop_misc` returned `MOSQ_ERR_NO_CONN`:
    /// a clean disconnect — a certificate renewal — was reported as a failed connection.)
    public func disconnect() {
        guard state == .connected || state == .connecting else { return }
        state = .disconnecting
        let rc = mosquitto_disconnect(handle)
        if batching { markDirty() }
        if rc != Int32(MOSQ_ERR_SUCCESS.rawValue) {
            forceClose(rc: rc)
        } else if !inLoop {
            afterOperation(rc)
        }
    }

    /// Closes the socket now, without DISCONNECT (the broker publishes the will).
    public func abort() {
        guard state != .idle else { return }
        forceClose(rc: Int32(MOSQ_ERR_CONN_LOST.rawValue))
    }

    /// Frees the libmosquitto handle; drops whatever it still queues. The client is unusable after.
    public func destroy() {
        guard !destroyed else { return }
        destroyed = true
        mosquitto_destroy(handle)
        reactor.unregister(token: slot)
        registered = false
        state = .idle
    }

    // MARK: Reactor side

    public func reactorHandle(events: ReactorEvents) {
        guard registered, !destroyed else { return }
        let ssl = mosquitto_ssl_get(handle)
        var rc = Int32(MOSQ_ERR_SUCCESS.rawValue)
        inLoop = true
        if readFilter { CMosquitto_read_filter_rearm(ssl) }
        if CMosquitto_SSL_is_init_finished(ssl) == 0 {
            // libmosquitto 2.0.11 treats SSL_ERROR_SYSCALL during the handshake as "try again",
            // so a refused or reset connect would spin here for ever: ask the socket itself.
            if !events.isDisjoint(with: [.error, .hangUp]) {
                inLoop = false
                let fd = mosquitto_socket(handle)
                var soError: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
                if soError != 0 {
                    forceClose(rc: Int32(MOSQ_ERR_ERRNO.rawValue), detail: "\(String(cString: strerror(soError))) (\(options.host):\(options.port))")
                } else {
                    forceClose(rc: Int32(MOSQ_ERR_CONN_LOST.rawValue), detail: "refused or closed before the TLS handshake finished: is a TLS broker listening on \(options.host):\(options.port)?")
                }
                return
            }
            // During the handshake OpenSSL may want to read while libmosquitto says it wants to
            // write; loop_write would do nothing and we would spin. Always read.
            rc = readAll()
        } else {
            if batching, events.contains(.writable), CMosquitto_flush_write_buffer(ssl) < 0 {
                rc = Int32(MOSQ_ERR_CONN_LOST.rawValue)
            }
            if rc == Int32(MOSQ_ERR_SUCCESS.rawValue), !events.isDisjoint(with: [.readable, .error, .hangUp]) {
                rc = readAll()
            }
            if rc == Int32(MOSQ_ERR_SUCCESS.rawValue), mosquitto_socket(handle) >= 0,
               events.contains(.writable) || mosquitto_want_write(handle) {
                rc = mosquitto_loop_write(handle, 1)
            }
        }
        inLoop = false
        if batching { markDirty() }
        afterOperation(rc)
    }

    /// A connection that batches writes (a device at ≥ 10 msg/s) writes and reads TLS records
    /// all the time: it keeps OpenSSL's record buffers (~17 KB each way) instead of freeing
    /// and allocating them around every record (SSL_MODE_RELEASE_BUFFERS, set on every context
    /// for the memory of slow devices). Opt-in, SENSORFLEET_KEEP_TLS_BUFFERS=1: in four
    /// alternating runs of S1/S2 it was no clear gain (S2 0.66 vs 0.88 CPU-s/100k, S1 1.94 vs
    /// 1.76: medians with and without, on a loaded machine), for ~1 MB more at 100 devices.
    private func keepTLSBuffers() {
        guard MQTTClient.keepBuffersWhenBatching, let ssl = mosquitto_ssl_get(handle) else { return }
        _ = SSL_ctrl(OpaquePointer(ssl), SSL_CTRL_CLEAR_MODE, Int(SSL_MODE_RELEASE_BUFFERS), nil)
    }

    static let keepBuffersWhenBatching = ProcessInfo.processInfo.environment["SENSORFLEET_KEEP_TLS_BUFFERS"] == "1"

    private func markDirty() {
        if !isDirty {
            isDirty = true
            reactor.flushAtEndOfTurn(self)
        }
    }

    /// Called by the reactor at the end of a turn: what libmosquitto wrote during the turn
    /// (publishes, PUBACKs, pings) leaves in one write() instead of one per packet. A full
    /// socket keeps the rest for EPOLLOUT; a failed write closes the connection.
    public func reactorFlush() {
        isDirty = false
        guard batching, !destroyed, mosquitto_socket(handle) >= 0 else { return }
        switch CMosquitto_flush_write_buffer(mosquitto_ssl_get(handle)) {
        case 1, 0: updateInterest()
        default: forceClose(rc: Int32(MOSQ_ERR_CONN_LOST.rawValue), detail: "write to the broker failed")
        }
    }

    static let useReadFilter = ProcessInfo.processInfo.environment["SENSORFLEET_READ_FILTER"] != "0"

    /// Batch writes per reactor turn (SENSORFLEET_WRITE_BATCHING=0 turns it off, to compare).
    static let writeBatching = ProcessInfo.processInfo.environment["SENSORFLEET_WRITE_BATCHING"] != "0"

    /// loop_read until OpenSSL holds nothing more. With read-ahead (TLSContext) one read()
    /// brings several TLS records — a burst of PUBACKs — but libmosquitto only asks OpenSSL
    /// while `SSL_pending` is non-zero, which does not count records not yet decrypted, and
    /// epoll will not report bytes already taken off the socket: so we ask `SSL_has_pending`.
    private func readAll() -> Int32 {
        let second = KeepAliveFloors.seconds()
        let callbacksBefore = callbacksSeen
        defer {
            // A callback inside loop_read means a whole packet was read, after which libmosquitto
            // sets last_msg_in to its clock (≥ the second the read started).
            if callbacksSeen != callbacksBefore { keepAliveFloors.packetRead(since: second) }
        }
        var rc = mosquitto_loop_read(handle, 1)
        var rounds = 0
        while rc == Int32(MOSQ_ERR_SUCCESS.rawValue), rounds < 10_000, mosquitto_socket(handle) >= 0,
              let ssl = mosquitto_ssl_get(handle), SSL_has_pending(OpaquePointer(ssl)) == 1 {
            rc = mosquitto_loop_read(handle, 1)
            rounds += 1
        }
        return rc
    }

    /// About once a second: the connect time-out, and libmosquitto's keep-alive (`loop_misc`).
    ///
    /// `loop_misc` only acts (sends PINGREQ, or drops a connection whose PINGRESP is overdue)
    /// once `now ≥ next_msg_out` or `now − last_msg_in ≥ keepalive`, whole seconds of its clock
    /// (CLOCK_BOOTTIME), and both timestamps only grow. A connected client knows lower bounds of
    /// both — the connect call sets them; a callback during loop_read proves a packet read; the
    /// completion of its last publish proves that packet written after its call — and skips
    /// `loop_misc` while neither can be due by the next housekeeping: a device that publishes
    /// at QoS 1 more often than its keep-alive never needs it (10,000 of them made 10,000
    /// calls a second). A PINGRESP has no callback, so an otherwise silent client is called
    /// every second once its keep-alive could be due, as before. SENSORFLEET_LAZY_KEEPALIVE=0
    /// calls it for every client every second, to compare.
    public func reactorHousekeeping(now: MonotonicInstant) {
        guard registered, !destroyed else { return }
        if state == .connecting, now.duration(since: connectStartedAt) > Duration.saturating(seconds: options.connectTimeout) {
            timedOut = true
            forceClose(rc: MosquittoError.connectTimeoutCode, detail: "nothing within \(options.connectTimeout) s from \(options.host):\(options.port)")
            return
        }
        // A socket libmosquitto closed on its own, or output it holds, is still seen to here
        // (afterOperation), as every second before.
        if state == .connected, MQTTClient.lazyKeepAlive, mosquitto_socket(handle) >= 0, !mosquitto_want_write(handle),
           !keepAliveMayBeDue() { return }
        inLoop = true
        let rc = mosquitto_loop_misc(handle)
        inLoop = false
        if batching { markDirty() }
        afterOperation(rc)
    }

    static let lazyKeepAlive = ProcessInfo.processInfo.environment["SENSORFLEET_LAZY_KEEPALIVE"] != "0"

    /// Whether `loop_misc` could act before the housekeeping after this one.
    private func keepAliveMayBeDue() -> Bool {
        // libmosquitto uses the broker's Server Keep Alive (MQTT 5) instead of ours; 0 turns
        // keep-alive off. The shorter of the two that are on is the safe one to assume.
        let ours = options.keepAlive, theirs = connack.serverKeepAlive ?? 0
        return keepAliveFloors.mayBeDue(keepAlive: ours > 0 && theirs > 0 ? min(ours, theirs) : max(ours, theirs))
    }

    private func forceClose(rc: Int32, detail: String? = nil) {
        if let detail, forcedDetail == nil { forcedDetail = detail }
        if mosquitto_socket(handle) >= 0 {
            // libmosquitto has no call that just closes a socket, and during the TLS handshake it
            // never gives up on one by itself. Its connect path closes the old socket first, and
            // an empty host then fails at once in getaddrinfo (no DNS query, checked with
            // strace): the socket is gone and the QoS 1 messages it holds stay queued. The next
            // connect() sets the real host again.
            inLoop = true
            _ = mosquitto_connect_bind_async(handle, "", Int32(options.port), Int32(options.keepAlive), nil)
            inLoop = false
        }
        if closeRC == nil || closeRC == 0 { closeRC = rc }
        afterOperation(rc)
    }

    /// Decides, after any libmosquitto call, whether the connection is gone, and keeps the
    /// epoll registration in step with what libmosquitto wants.
    private func afterOperation(_ rc: Int32) {
        guard !destroyed else { return }
        if state == .connecting, !tlsEstablished, CMosquitto_SSL_is_init_finished(mosquitto_ssl_get(handle)) == 1,
           mosquitto_ssl_get(handle) != nil {
            tlsEstablished = true
        }
        if state != .idle && mosquitto_socket(handle) < 0 {
            closed(rc: rc)
            return
        }
        if state == .connecting, MQTTClient.quickAck { _ = CMosquitto_set_quickack(mosquitto_socket(handle)) }
        updateInterest()
    }

    /// Until CONNACK, acknowledge the broker's segments at once (`TCP_QUICKACK`, set again after
    /// every exchange since Linux drops it by itself): a broker with Nagle on (mosquitto's
    /// default `set_tcp_nodelay false`) otherwise holds its last handshake write until our
    /// delayed ACK, ~40 ms on every connect. SENSORFLEET_TCP_QUICKACK=0 turns it off, to compare.
    static let quickAck = ProcessInfo.processInfo.environment["SENSORFLEET_TCP_QUICKACK"] != "0"

    private func closed(rc: Int32) {
        let wasState = state
        state = .idle
        batching = false
        readFilter = false
        registered = false
        registeredEvents = []
        mosquitto_log_callback_set(handle, nil)
        let success = Int32(MOSQ_ERR_SUCCESS.rawValue)
        var error: MosquittoError?
        let code = timedOut ? MosquittoError.connectTimeoutCode : (closeRC.flatMap { $0 == success ? nil : $0 } ?? (rc == success ? nil : rc))
        var context = MosquittoError.Context(mqtt5: options.useMQTT5)
        context.closedBeforeCONNACK = wasState == .connecting && tlsEstablished
        if wasState == .connected, let firstPublishAt, MonotonicInstant.now().duration(since: firstPublishAt) < .seconds(2) {
            context.closedAfterPublishTo = lastPublishTopic
        }
        if let refusal {
            error = MosquittoError(code: MosquittoError.connectRefusedCode, detail: nil, reasonCode: refusal)
        } else if let serverDisconnectReason, wasState != .disconnecting {
            error = MosquittoError(code: MosquittoError.disconnectedByServerCode, detail: nil,
                                   reasonCode: serverDisconnectReason, context: context)
        } else if let code {
            var detail = forcedDetail ?? options.tls?.takeVerifyError() ?? lastLog
            if code == Int32(MOSQ_ERR_ERRNO.rawValue), detail == nil { detail = String(cString: strerror(CMosquitto_errno())) }
            error = MosquittoError(code: code, detail: detail, context: context)
        } else if wasState != .disconnecting {
            // The socket went away without a reason from libmosquitto.
            error = MosquittoError(code: Int32(MOSQ_ERR_CONN_LOST.rawValue), detail: lastLog, context: context)
        }
        reactor.deferToNextTurn { [weak self] in
            guard let self, !self.destroyed else { return }
            self.delegate?.clientDidClose(self, error: error)
        }
    }

    private func updateInterest() {
        let fd = mosquitto_socket(handle)
        guard fd >= 0 else { return }
        var wanted: ReactorEvents = .readable
        let ssl = mosquitto_ssl_get(handle)
        if CMosquitto_SSL_is_init_finished(ssl) == 0 {
            if CMosquitto_SSL_want_write_ptr(ssl) != 0 { wanted.insert(.writable) }
        } else if mosquitto_want_write(handle) || (batching && !isDirty && CMosquitto_write_buffer_pending(ssl) > 0) {
            // What the write buffer holds leaves at the end of this turn (reactorFlush) while
            // the source is dirty; EPOLLOUT only when a flush found the socket full. Asking for
            // it around every batched write cost two epoll_ctl and a wake-up per message.
            wanted.insert(.writable)
        }
        if !registered {
            reactor.watch(fd: fd, events: wanted, token: slot, modify: false)
            registered = true
            registeredEvents = wanted
        } else if wanted != registeredEvents {
            reactor.watch(fd: fd, events: wanted, token: slot, modify: true)
            registeredEvents = wanted
        }
    }

    // MARK: Callbacks from libmosquitto (on this reactor's thread, inside a loop call)

    fileprivate func didConnect(rc: Int32, flags: Int32, properties: OpaquePointer?) {
        callbacksSeen &+= 1
        if rc == 0 {
            if let properties { readConnack(properties) }
            state = .connected
            if options.batchWrites, MQTTClient.writeBatching, CMosquitto_install_write_buffer(mosquitto_ssl_get(handle)) == 1 {
                batching = true
                markDirty()
                keepTLSBuffers()
            }
            // No read() that can only return EAGAIN at the end of each readable event (see the
            // filter in CMosquitto/shim.h). SENSORFLEET_READ_FILTER=0 turns it off, to compare.
            readFilter = MQTTClient.useReadFilter && CMosquitto_install_read_filter(mosquitto_ssl_get(handle)) == 1
            mosquitto_log_callback_set(handle, nil)
            delegate?.clientDidConnect(self, sessionPresent: flags & 1 != 0)
        } else {
            refusal = options.useMQTT5 ? Int(rc) : MQTTReasonCode.fromV311(Int(rc))
        }
    }

    private func readConnack(_ properties: OpaquePointer) {
        var value16: UInt16 = 0
        if mosquitto_property_read_int16(properties, Int32(MQTT_PROP_SERVER_KEEP_ALIVE.rawValue), &value16, false) != nil {
            connack.serverKeepAlive = Int(value16)
        }
        if mosquitto_property_read_int16(properties, Int32(MQTT_PROP_TOPIC_ALIAS_MAXIMUM.rawValue), &value16, false) != nil {
            connack.topicAliasMaximum = Int(value16)
        }
        if mosquitto_property_read_int16(properties, Int32(MQTT_PROP_RECEIVE_MAXIMUM.rawValue), &value16, false) != nil {
            connack.receiveMaximum = Int(value16)
        }
        var value32: UInt32 = 0
        if mosquitto_property_read_int32(properties, Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue), &value32, false) != nil {
            connack.sessionExpiry = value32
        }
        var text: UnsafeMutablePointer<CChar>?
        if mosquitto_property_read_string(properties, Int32(MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER.rawValue), &text, false) != nil, let text {
            connack.assignedClientID = String(cString: text)
            free(text)
        }
    }

    fileprivate func didDisconnect(rc: Int32) {
        // At MQTT 5 a DISCONNECT from the broker arrives here with its reason code (all of the
        // broker's error reasons are 0x80 or more; libmosquitto's own codes are below 0x80).
        if options.useMQTT5, rc >= 0x80, state != .disconnecting {
            serverDisconnectReason = Int(rc)
            return
        }
        if closeRC == nil { closeRC = rc }
    }

    fileprivate func didPublish(mid: Int32, reason: Int32) {
        callbacksSeen &+= 1
        keepAliveFloors.completed(mid: mid)
        if inPublish {
            earlyCompletions.append((mid, reason))
            return
        }
        delegate?.client(self, didCompletePublish: mid, reasonCode: Int(reason))
    }

    fileprivate func didReceive(_ message: UnsafePointer<mosquitto_message>, properties: OpaquePointer?) {
        callbacksSeen &+= 1
        let topic = String(cString: message.pointee.topic)
        let raw = UnsafeRawBufferPointer(start: message.pointee.payload, count: Int(message.pointee.payloadlen))
        var responseTopic: String?
        var correlationData: [UInt8]?
        if let properties {
            var text: UnsafeMutablePointer<CChar>?
            if mosquitto_property_read_string(properties, Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue), &text, false) != nil, let text {
                responseTopic = String(cString: text)
                free(text)
            }
            var data: UnsafeMutableRawPointer?
            var length: UInt16 = 0
            if mosquitto_property_read_binary(properties, Int32(MQTT_PROP_CORRELATION_DATA.rawValue), &data, &length, false) != nil {
                correlationData = data.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(length))) } ?? []
                free(data)
            }
        }
        delegate?.client(self, didReceive: topic, payload: raw, responseTopic: responseTopic, correlationData: correlationData)
    }

    fileprivate func didSubscribe(mid: Int32, count: Int32, granted: UnsafePointer<Int32>?) {
        callbacksSeen &+= 1
        let codes = granted.map { pointer in (0..<Int(max(0, count))).map { Int(pointer[$0]) } } ?? []
        delegate?.client(self, didSubscribe: mid, grantedQoS: codes)
    }

    fileprivate func didLog(level: Int32, text: UnsafePointer<CChar>) {
        if level & (Int32(MOSQ_LOG_ERR) | Int32(MOSQ_LOG_WARNING)) != 0 {
            lastLog = String(cString: text)
        }
    }
}

@inline(__always)
private func client(_ userdata: UnsafeMutableRawPointer?) -> MQTTClient? {
    guard let userdata else { return nil }
    return Unmanaged<MQTTClient>.fromOpaque(userdata).takeUnretainedValue()
}

private let onConnect: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, Int32, OpaquePointer?) -> Void = { _, userdata, rc, flags, properties in
    client(userdata)?.didConnect(rc: rc, flags: flags, properties: properties)
}
private let onDisconnect: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, OpaquePointer?) -> Void = { _, userdata, rc, _ in
    client(userdata)?.didDisconnect(rc: rc)
}
private let onPublish: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, Int32, OpaquePointer?) -> Void = { _, userdata, mid, reason, _ in
    client(userdata)?.didPublish(mid: mid, reason: reason)
}
private let onMessage: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafePointer<mosquitto_message>?, OpaquePointer?) -> Void = { _, userdata, message, properties in
    guard let message else { return }
    client(userdata)?.didReceive(message, properties: properties)
}
private let onSubscribe: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, Int32, UnsafePointer<Int32>?, OpaquePointer?) -> Void = { _, userdata, mid, count, granted, _ in
    client(userdata)?.didSubscribe(mid: mid, count: count, granted: granted)
}
private let onLog: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32, UnsafePointer<CChar>?) -> Void = { _, userdata, level, text in
    guard let text else { return }
    client(userdata)?.didLog(level: level, text: text)
}
