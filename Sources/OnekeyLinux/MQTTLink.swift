import CMosquitto
import CSystemd
import Foundation
import Glibc

/// Where and how to reach the broker.
public struct MQTTEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var clientID: String
    public var keepaliveSeconds: Int
    public var tls: Bool
    public var caFile: String
    public var username: String
    /// Path of a file holding the password; read at each connect, never logged.
    public var passwordFile: String
    public var willTopic: String
    public var willPayload: [UInt8]

    public init(host: String, port: Int, clientID: String, keepaliveSeconds: Int = 30, tls: Bool = false,
                caFile: String = "", username: String = "", passwordFile: String = "",
                willTopic: String = "", willPayload: [UInt8] = []) {
        self.host = host; self.port = port; self.clientID = clientID; self.keepaliveSeconds = keepaliveSeconds
        self.tls = tls; self.caFile = caFile; self.username = username; self.passwordFile = passwordFile
        self.willTopic = willTopic; self.willPayload = willPayload
    }
}

/// One MQTT connection driven by the daemon's event loop through libmosquitto's non-threaded
/// API: the socket is an io source (`mosquitto_loop_read` / `loop_write`, write interest only
/// while `mosquitto_want_write`), a 1 s timer runs `loop_misc` (keepalive) and the CONNACK
/// deadline, and reconnects wait on a loop timer with capped exponential backoff and jitter.
/// No thread: a publish made on the loop is written to the socket in the same call.
///
/// Every connection is a fresh handle with a clean session, so nothing is resent behind the
/// gateway's back: what was not PUBACKed is the outbox's to resend. A `published` event is the
/// broker's PUBACK, the only proof of delivery.
public final class MQTTLink {
    public enum Event: Sendable {
        case connected(generation: Int)
        case disconnected(generation: Int, reason: String)
        case connectFailed(reason: String, retryInSeconds: Double)
        case published(generation: Int, mid: Int32)
        case message(topic: String, payload: [UInt8])
        case log(level: Int32, text: String)
    }

    public let endpoint: MQTTEndpoint
    private let loop: EventLoop
    private let handler: (Event) -> Void
    private let subscriptions: [String]
    private var mosq: OpaquePointer?
    private var socket: EventLoop.IO?
    private var tick: EventLoop.Timer!
    private var retry: EventLoop.Timer!
    private var generation = 0
    public private(set) var isConnected = false
    private var connectStartedAt: UInt64 = 0
    private var attempt = 0
    private var stopped = false
    /// Callbacks fire inside libmosquitto calls; their events are handed on after the call returns.
    private var pending: [Event] = []
    private var finalMid: Int32?
    private var onStopped: (() -> Void)?
    /// For a broker given by name: its lookup, off the loop, before each connect attempt.
    private var resolver: LoopWorker<BrokerResolver.Answer>?
    /// The addresses the last lookup gave, for the attempt it was made for.
    private var addresses: [String] = []

    static let connackTimeoutNanos: UInt64 = 10_000_000_000
    private static let libraryInit: Void = { mosquitto_lib_init(); return () }()

    public init(endpoint: MQTTEndpoint, subscriptions: [String], loop: EventLoop, handler: @escaping (Event) -> Void) throws(SystemError) {
        _ = Self.libraryInit
        self.endpoint = endpoint
        self.subscriptions = subscriptions
        self.loop = loop
        self.handler = handler
        tick = try loop.addTimer() { [unowned self] in misc() }
        retry = try loop.addTimer() { [unowned self] in connect() }
    }

    deinit {
        socket?.cancel()
        if let mosq { mosquitto_destroy(mosq) }
    }

    public func start() { connect() }

    /// Publishes with QoS 1 on the current connection, written to the socket now. Returns
    /// (generation, message id), or nil when not connected (the caller keeps the message and
    /// tries after the next `connected`).
    public func publish(topic: String, payload: [UInt8], retain: Bool) -> (generation: Int, mid: Int32)? {
        guard isConnected, let mosq else { return nil }
        var mid: Int32 = 0
        let rc = payload.withUnsafeBytes { p in
            mosquitto_publish(mosq, &mid, topic, Int32(p.count), p.baseAddress, 1, retain)
        }
        guard rc == Self.ok else {
            if rc == Int32(MOSQ_ERR_NO_CONN.rawValue) || rc == Int32(MOSQ_ERR_CONN_LOST.rawValue) || rc == Int32(MOSQ_ERR_ERRNO.rawValue) {
                lost(rc)
            }
            return nil
        }
        updateInterest()
        return (generation, mid)
    }

    /// Stops the link. When connected, first publishes `final` (the retained offline status)
    /// and waits up to `timeout` for its PUBACK, then disconnects cleanly (no Last Will).
    /// `done` runs on the loop once the link is closed.
    public func stop(final: (topic: String, payload: [UInt8])?, timeout: Double = 2, done: @escaping () -> Void) {
        stopped = true
        retry.disarm()
        guard isConnected, let mosq, let final else { close(disconnect: true); done(); return }
        var mid: Int32 = 0
        let rc = final.payload.withUnsafeBytes { p in
            mosquitto_publish(mosq, &mid, final.topic, Int32(p.count), p.baseAddress, 1, true)
        }
        guard rc == Self.ok else { close(disconnect: true); done(); return }
        finalMid = mid
        onStopped = done
        updateInterest()
        retry.arm(afterSeconds: timeout)  // the retry timer doubles as the stop deadline
    }

    private func lookUpThenConnect() {
        if resolver == nil {
            do { resolver = try LoopWorker(loop: loop) } catch {
                backoff("cannot start looking up \(endpoint.host): \(error)")
                return
            }
        }
        // One lookup at a time: a server that does not answer is not asked twice at once.
        guard let resolver, resolver.inProgress == 0 else { return }
        let host = endpoint.host
        resolver.run({ BrokerResolver.lookUp(host) }) { [unowned self] answer in
            if stopped { finishStop(); return }
            switch answer {
            case .addresses(let list):
                addresses = list
                connect()
            case .failed(let why):
                backoff("looking up \(endpoint.host): \(why)")
            }
        }
    }

    private func finishStop() {
        guard let done = onStopped else { return }
        onStopped = nil
        finalMid = nil
        close(disconnect: true)
        done()
    }

    static let ok = Int32(MOSQ_ERR_SUCCESS.rawValue)

    private func connect() {
        if stopped { finishStop(); return }
        guard mosq == nil else { return }
        if addresses.isEmpty && !BrokerResolver.isAddress(endpoint.host) { lookUpThenConnect(); return }
        // Plain TCP connects to an address the lookup gave (the next one after each failed
        // attempt). TLS needs the name itself — libmosquitto verifies the certificate against
        // what it connects to — so it resolves again inside, right after the lookup answered.
        let host = endpoint.tls || addresses.isEmpty ? endpoint.host : addresses[attempt % addresses.count]
        addresses = []
        let (handle, failure) = makeHandle()
        guard let handle else { backoff(failure); return }
        let rc = mosquitto_connect_async(handle, host, Int32(endpoint.port), Int32(endpoint.keepaliveSeconds))
        let fd = mosquitto_socket(handle)
        guard rc == Self.ok, fd >= 0 else {
            let detail = rc == Int32(MOSQ_ERR_ERRNO.rawValue) ? String(cString: strerror(errno)) : String(cString: mosquitto_strerror(rc))
            mosquitto_destroy(handle)
            // A connect that fails at once (a TLS handshake refused on loopback) logged its reason
            // through the log callback (e.g. "certificate verify failed"): say it now, first.
            deliver()
            backoff("connecting to \(endpoint.host):\(endpoint.port)\(endpoint.tls ? " (TLS)" : ""): \(detail)")
            return
        }
        mosq = handle
        generation += 1
        connectStartedAt = monotonicNanos()
        do {
            socket = try loop.addIO(fd: fd, events: UInt32(EPOLLIN.rawValue | EPOLLOUT.rawValue), priority: .alarm) { [unowned self] revents in
                ready(revents)
            }
        } catch {
            close(disconnect: false)
            backoff("cannot watch the broker socket: \(error)")
            return
        }
        tick.arm(afterSeconds: 1)
    }

    private func ready(_ revents: UInt32) {
        guard let mosq else { return }
        if revents & UInt32(EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
            let rc = mosquitto_loop_read(mosq, 1)
            if rc != Self.ok { lost(rc); return }
        }
        if revents & UInt32(EPOLLOUT.rawValue) != 0, self.mosq != nil {
            let rc = mosquitto_loop_write(mosq, 1)
            if rc != Self.ok { lost(rc); return }
        }
        deliver()
        updateInterest()
    }

    private func misc() {
        guard let mosq else { return }
        if !isConnected && monotonicNanos() - connectStartedAt > Self.connackTimeoutNanos {
            lost(nil, reason: "no answer from the broker within \(Self.connackTimeoutNanos / 1_000_000_000) s")
            return
        }
        let rc = mosquitto_loop_misc(mosq)
        if rc != Self.ok { lost(rc); return }
        deliver()
        updateInterest()
        tick.arm(afterSeconds: 1)
    }

    private func updateInterest() {
        guard let mosq, let socket else { return }
        // Until the TCP connect completes, writability is what tells us it did.
        let write = mosquitto_want_write(mosq) || !isConnected
        socket.setEvents(UInt32(EPOLLIN.rawValue) | (write ? UInt32(EPOLLOUT.rawValue) : 0))
    }

    private func deliver() {
        while !pending.isEmpty {
            let e = pending.removeFirst()
            if case .published(_, let mid) = e, mid == finalMid { finishStop(); return }
            handler(e)
        }
    }

    /// The connection failed or dropped: close it and reconnect after a backoff.
    private func lost(_ rc: Int32?, reason given: String? = nil) {
        let reason = given ?? rc.map { rc in
            rc == Int32(MOSQ_ERR_ERRNO.rawValue) ? String(cString: strerror(errno)) : String(cString: mosquitto_strerror(rc))
        } ?? "closed"
        let wasConnected = isConnected
        let gen = generation
        close(disconnect: false)
        deliver()  // whatever the last read produced (a PUBACK) still counts
        if stopped { finishStop(); return }
        if wasConnected {
            attempt = 0
            handler(.disconnected(generation: gen, reason: reason))
            backoff(nil)
        } else {
            backoff("connection to \(endpoint.host):\(endpoint.port) failed: \(reason)")
        }
    }

    private func close(disconnect: Bool) {
        tick.disarm()
        socket?.cancel()
        socket = nil
        if let h = mosq {
            if disconnect && isConnected { mosquitto_disconnect(h) }
            mosquitto_destroy(h)
        }
        mosq = nil
        isConnected = false
    }

    /// Waits before the next attempt: 0.25 s doubling to 30 s, ±25 % jitter so a fleet of
    /// gateways does not reconnect in step after a broker restart.
    private func backoff(_ failure: String?) {
        let base = min(30.0, 0.25 * pow(2.0, Double(min(attempt, 10))))
        let delay = base * Double.random(in: 0.75...1.25)
        attempt += 1
        if let failure { handler(.connectFailed(reason: failure, retryInSeconds: delay)) }
        retry.arm(afterSeconds: delay)
    }

    /// Creates and configures a handle: clean session, TCP_NODELAY, Last Will, TLS with
    /// verification, credentials.
    private func makeHandle() -> (OpaquePointer?, String) {
        let me = Unmanaged.passUnretained(self).toOpaque()
        guard let h = mosquitto_new(endpoint.clientID, true, me) else { return (nil, "mosquitto_new failed: \(String(cString: strerror(errno)))") }
        func fail(_ what: String, _ rc: Int32) -> (OpaquePointer?, String) {
            mosquitto_destroy(h)
            return (nil, "\(what): \(String(cString: mosquitto_strerror(rc)))")
        }
        _ = mosquitto_int_option(h, MOSQ_OPT_PROTOCOL_VERSION, Int32(MQTT_PROTOCOL_V311))
        _ = mosquitto_int_option(h, MOSQ_OPT_TCP_NODELAY, 1)
        _ = mosquitto_max_inflight_messages_set(h, 1000)
        if !endpoint.willTopic.isEmpty {
            let rc = endpoint.willPayload.withUnsafeBytes { p in
                mosquitto_will_set(h, endpoint.willTopic, Int32(p.count), p.baseAddress, 1, true)
            }
            if rc != Self.ok { return fail("setting the Last Will", rc) }
        }
        if !endpoint.username.isEmpty {
            var password: String?
            if !endpoint.passwordFile.isEmpty {
                guard let text = try? String(contentsOfFile: endpoint.passwordFile, encoding: .utf8) else {
                    mosquitto_destroy(h)
                    return (nil, "cannot read password_file \(endpoint.passwordFile)")
                }
                password = String(text.split(whereSeparator: \.isNewline).first ?? "")
            }
            let rc = mosquitto_username_pw_set(h, endpoint.username, password)
            if rc != Self.ok { return fail("setting credentials", rc) }
        }
        if endpoint.tls {
            let ca = endpoint.caFile.isEmpty ? nil : endpoint.caFile
            let rc = mosquitto_tls_set(h, ca, ca == nil ? "/etc/ssl/certs" : nil, nil, nil, nil)
            if rc != Self.ok { return fail("setting up TLS (ca_file \(endpoint.caFile))", rc) }
            _ = mosquitto_tls_opts_set(h, 1, nil, nil)  // SSL_VERIFY_PEER
            _ = mosquitto_tls_insecure_set(h, false)    // and check the host name
        }
        mosquitto_log_callback_set(h) { _, obj, level, text in
            guard let obj, let text, level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING) != 0 else { return }
            Unmanaged<MQTTLink>.fromOpaque(obj).takeUnretainedValue().pending.append(.log(level: level, text: String(cString: text)))
        }
        mosquitto_connect_callback_set(h) { mosq, obj, rc in
            guard let obj else { return }
            Unmanaged<MQTTLink>.fromOpaque(obj).takeUnretainedValue().onConnect(mosq, rc)
        }
        mosquitto_publish_callback_set(h) { _, obj, mid in
            guard let obj else { return }
            let me = Unmanaged<MQTTLink>.fromOpaque(obj).takeUnretainedValue()
            me.pending.append(.published(generation: me.generation, mid: mid))
        }
        mosquitto_message_callback_set(h) { _, obj, msg in
            guard let obj, let msg else { return }
            let m = msg.pointee
            let topic = String(cString: m.topic)
            let payload = m.payloadlen > 0 ? Array(UnsafeRawBufferPointer(start: m.payload, count: Int(m.payloadlen))) : []
            Unmanaged<MQTTLink>.fromOpaque(obj).takeUnretainedValue().pending.append(.message(topic: topic, payload: payload))
        }
        return (h, "")
    }

    private func onConnect(_ h: OpaquePointer?, _ rc: Int32) {
        guard rc == 0 else {
            pending.append(.log(level: Int32(MOSQ_LOG_ERR), text: "broker refused the connection: \(String(cString: mosquitto_connack_string(rc)))"))
            return  // the broker closes the socket; the next read reports it
        }
        for filter in subscriptions { mosquitto_subscribe(h, nil, filter, 1) }
        // With a log callback set, libmosquitto formats a debug line (malloc + vsnprintf) for
        // every packet, two of them before a press's page. Once connected over plain TCP, its
        // only warning left is a PUBACK for an unknown message id (2.0.11's sources), which the
        // gateway ignores too, so the callback goes; over TLS it stays for OpenSSL's errors.
        if !endpoint.tls { mosquitto_log_callback_set(h, nil) }
        isConnected = true
        attempt = 0
        pending.append(.connected(generation: generation))
    }
}
