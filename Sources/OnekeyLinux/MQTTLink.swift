import CMosquitto
import Dispatch
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

/// One MQTT connection owned by the gateway (libmosquitto 2.0.11's own reconnect gives up when
/// the first connect fails, so the link owns it): a thread connects, runs the network loop,
/// and on any failure destroys the handle and reconnects with capped exponential backoff and
/// jitter. Every connection is a fresh handle with a clean session, so nothing is resent behind
/// the gateway's back: what was not PUBACKed is the outbox's to resend.
///
/// Events are delivered on `queue`, in the order libmosquitto produced them. A `published`
/// event is the broker's PUBACK, the only proof of delivery.
public final class MQTTLink: @unchecked Sendable {
    public enum Event: Sendable {
        case connected(generation: Int)
        case disconnected(generation: Int, reason: String)
        case connectFailed(reason: String, retryInSeconds: Double)
        case published(generation: Int, mid: Int32)
        case message(topic: String, payload: [UInt8])
        case log(level: Int32, text: String)
    }

    public let endpoint: MQTTEndpoint
    private let queue: DispatchQueue
    private let handler: @Sendable (Event) -> Void
    private let subscriptions: [String]
    private let lock = NSCondition()
    // Guarded by `lock`:
    private var mosq: OpaquePointer?
    private var generation = 0
    private var connected = false
    private var stopping = false
    private var finished = false
    private var pendingStopMid: Int32?

    private static let libraryInit: Void = { mosquitto_lib_init(); return () }()

    public init(endpoint: MQTTEndpoint, subscriptions: [String], queue: DispatchQueue, handler: @escaping @Sendable (Event) -> Void) {
        _ = Self.libraryInit
        self.endpoint = endpoint
        self.subscriptions = subscriptions
        self.queue = queue
        self.handler = handler
    }

    public var isConnected: Bool { lock.lock(); defer { lock.unlock() }; return connected }

    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "onekeyd-mqtt"
        thread.start()
    }

    /// Publishes with QoS 1 on the current connection. Returns (generation, message id), or nil
    /// when not connected (the caller keeps the message and tries after the next `connected`).
    public func publish(topic: String, payload: [UInt8], retain: Bool) -> (generation: Int, mid: Int32)? {
        lock.lock(); defer { lock.unlock() }
        guard connected, let mosq else { return nil }
        var mid: Int32 = 0
        let rc = payload.withUnsafeBytes { p in
            mosquitto_publish(mosq, &mid, topic, Int32(p.count), p.baseAddress, 1, retain)
        }
        return rc == Int32(MOSQ_ERR_SUCCESS.rawValue) ? (generation, mid) : nil
    }

    /// Stops the link. When connected, first publishes `final` (the retained offline status)
    /// and waits up to `timeout` for its PUBACK, then disconnects cleanly (no Last Will).
    public func stop(final: (topic: String, payload: [UInt8])?, timeout: Double = 2) {
        lock.lock()
        stopping = true
        if connected, let mosq, let final {
            var mid: Int32 = 0
            let rc = final.payload.withUnsafeBytes { p in
                mosquitto_publish(mosq, &mid, final.topic, Int32(p.count), p.baseAddress, 1, true)
            }
            if rc == Int32(MOSQ_ERR_SUCCESS.rawValue) {
                pendingStopMid = mid
                let deadline = Date(timeIntervalSinceNow: timeout)
                while pendingStopMid != nil && connected && lock.wait(until: deadline) {}
            }
        }
        if let mosq { mosquitto_disconnect(mosq) }
        lock.broadcast()
        let deadline = Date(timeIntervalSinceNow: timeout + 1)
        while !finished && lock.wait(until: deadline) {}
        lock.unlock()
    }

    private func emit(_ e: Event) { let h = handler; queue.async { h(e) } }

    private func run() {
        var attempt = 0
        while true {
            lock.lock()
            if stopping { finished = true; lock.broadcast(); lock.unlock(); return }
            lock.unlock()

            let (handle, failure) = connectOnce()
            if let handle {
                lock.lock()
                mosq = handle
                generation += 1
                let gen = generation
                lock.unlock()
                var rc = Int32(MOSQ_ERR_SUCCESS.rawValue)
                var everConnected = false
                while true {
                    rc = mosquitto_loop(handle, 1000, 1)
                    lock.lock()
                    let stop = stopping
                    if connected { everConnected = true }
                    lock.unlock()
                    if rc != Int32(MOSQ_ERR_SUCCESS.rawValue) || stop { break }
                }
                lock.lock()
                let wasConnected = connected || everConnected
                connected = false
                mosq = nil
                lock.broadcast()
                lock.unlock()
                mosquitto_destroy(handle)
                if wasConnected {
                    attempt = 0
                    emit(.disconnected(generation: gen, reason: String(cString: mosquitto_strerror(rc))))
                } else {
                    backoff(&attempt, reason: "connection refused by broker: \(String(cString: mosquitto_strerror(rc)))")
                }
            } else {
                backoff(&attempt, reason: failure)
            }
        }
    }

    private func backoff(_ attempt: inout Int, reason: String) {
        let base = min(30.0, 0.25 * pow(2.0, Double(min(attempt, 10))))
        let delay = base * Double.random(in: 0.75...1.25)
        attempt += 1
        emit(.connectFailed(reason: reason, retryInSeconds: delay))
        lock.lock()
        let deadline = Date(timeIntervalSinceNow: delay)
        while !stopping && lock.wait(until: deadline) {}
        lock.unlock()
    }

    /// Creates and configures a handle and starts the TCP (and TLS) connection. CONNACK arrives
    /// later, in the loop, as the connect callback.
    private func connectOnce() -> (OpaquePointer?, String) {
        let me = Unmanaged.passUnretained(self).toOpaque()
        guard let h = mosquitto_new(endpoint.clientID, true, me) else { return (nil, "mosquitto_new failed: \(String(cString: strerror(errno)))") }
        func fail(_ what: String, _ rc: Int32) -> (OpaquePointer?, String) {
            mosquitto_destroy(h)
            return (nil, "\(what): \(String(cString: mosquitto_strerror(rc)))")
        }
        let ok = Int32(MOSQ_ERR_SUCCESS.rawValue)
        mosquitto_threaded_set(h, true)
        _ = mosquitto_int_option(h, MOSQ_OPT_PROTOCOL_VERSION, Int32(MQTT_PROTOCOL_V311))
        _ = mosquitto_int_option(h, MOSQ_OPT_TCP_NODELAY, 1)
        _ = mosquitto_max_inflight_messages_set(h, 1000)
        if !endpoint.willTopic.isEmpty {
            let rc = endpoint.willPayload.withUnsafeBytes { p in
                mosquitto_will_set(h, endpoint.willTopic, Int32(p.count), p.baseAddress, 1, true)
            }
            if rc != ok { return fail("setting the Last Will", rc) }
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
            if rc != ok { return fail("setting credentials", rc) }
        }
        if endpoint.tls {
            let ca = endpoint.caFile.isEmpty ? nil : endpoint.caFile
            let rc = mosquitto_tls_set(h, ca, ca == nil ? "/etc/ssl/certs" : nil, nil, nil, nil)
            if rc != ok { return fail("setting up TLS (ca_file \(endpoint.caFile))", rc) }
            _ = mosquitto_tls_opts_set(h, 1, nil, nil)  // SSL_VERIFY_PEER
            _ = mosquitto_tls_insecure_set(h, false)    // and check the host name
        }
        mosquitto_log_callback_set(h) { _, obj, level, text in
            guard let obj, let text, level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING) != 0 else { return }
            Unmanaged<MQTTLink>.fromOpaque(obj).takeUnretainedValue().emit(.log(level: level, text: String(cString: text)))
        }
        mosquitto_connect_callback_set(h) { mosq, obj, rc in
            guard let obj else { return }
            Unmanaged<MQTTLink>.fromOpaque(obj).takeUnretainedValue().onConnect(mosq, rc)
        }
        mosquitto_publish_callback_set(h) { _, obj, mid in
            guard let obj else { return }
            Unmanaged<MQTTLink>.fromOpaque(obj).takeUnretainedValue().onPublish(mid)
        }
        mosquitto_message_callback_set(h) { _, obj, msg in
            guard let obj, let msg else { return }
            let m = msg.pointee
            let topic = String(cString: m.topic)
            let payload = m.payloadlen > 0 ? Array(UnsafeRawBufferPointer(start: m.payload, count: Int(m.payloadlen))) : []
            Unmanaged<MQTTLink>.fromOpaque(obj).takeUnretainedValue().emit(.message(topic: topic, payload: payload))
        }
        let rc = mosquitto_connect(h, endpoint.host, Int32(endpoint.port), Int32(endpoint.keepaliveSeconds))
        if rc != ok {
            let detail = rc == Int32(MOSQ_ERR_ERRNO.rawValue) ? String(cString: strerror(errno)) : String(cString: mosquitto_strerror(rc))
            mosquitto_destroy(h)
            return (nil, "connecting to \(endpoint.host):\(endpoint.port)\(endpoint.tls ? " (TLS)" : ""): \(detail)")
        }
        return (h, "")
    }

    private func onConnect(_ h: OpaquePointer?, _ rc: Int32) {
        guard rc == 0 else {
            emit(.log(level: Int32(MOSQ_LOG_ERR), text: "broker refused the connection: \(String(cString: mosquitto_connack_string(rc)))"))
            mosquitto_disconnect(h)
            return
        }
        for filter in subscriptions { mosquitto_subscribe(h, nil, filter, 1) }
        lock.lock()
        connected = true
        let gen = generation
        lock.unlock()
        emit(.connected(generation: gen))
    }

    private func onPublish(_ mid: Int32) {
        lock.lock()
        if pendingStopMid == mid { pendingStopMid = nil; lock.broadcast() }
        let gen = generation
        lock.unlock()
        emit(.published(generation: gen, mid: mid))
    }
}
