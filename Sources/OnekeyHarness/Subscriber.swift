import CMosquitto
import Foundation
import Glibc
import OnekeyCore
import OnekeyLinux

/// A real MQTT client (libmosquitto) that records every message with its arrival time.
public final class Subscriber: @unchecked Sendable {
    public struct Message: Sendable {
        public var topic: String
        public var payload: [UInt8]
        public var retained: Bool
        public var receivedNanos: UInt64
        public var json: JSON? { try? JSON.parse(payload) }
        public var text: String { String(decoding: payload, as: UTF8.self) }
    }

    private let lock = NSCondition()
    private var messages: [Message] = []
    private var subscribed = 0
    private var connected = false
    private var mosq: OpaquePointer?
    private var published = Set<Int32>()
    private var topics: [String] = []

    /// `persistent`: a session the broker keeps (clean_session false), so messages published while
    /// this client is reconnecting are queued for it, as a phone app's would be.
    public init(port: Int, topics: [String], clientID: String = "harness-\(UInt32.random(in: 0...UInt32.max))", username: String? = nil,
                persistent: Bool = false) throws {
        mosquitto_lib_init()
        self.topics = topics
        // A client whose CONNACK never reached its callback (seen twice in full-suite runs: the
        // broker logged the client connected, the callback never ran for 30 s) is replaced by a
        // new one with the same id, which takes the session over.
        for attempt in 1...3 {
            let h = try open(port: port, clientID: clientID, username: username, persistent: persistent)
            mosq = h
            do {
                try waitFor(timeout: 10, "connect to 127.0.0.1:\(port)") { self.connected }
                break
            } catch where attempt < 3 {
                mosquitto_disconnect(h)
                mosquitto_loop_stop(h, true)
                mosquitto_destroy(h)
                mosq = nil
            }
        }
        try waitFor(timeout: 30, "subscribe") { self.subscribed >= topics.count }
    }

    private func open(port: Int, clientID: String, username: String?, persistent: Bool) throws -> OpaquePointer {
        let me = Unmanaged.passUnretained(self).toOpaque()
        guard let h = mosquitto_new(clientID, !persistent, me) else { throw HarnessError("mosquitto_new") }
        mosquitto_reconnect_delay_set(h, 1, 2, false)
        _ = mosquitto_int_option(h, MOSQ_OPT_TCP_NODELAY, 1)
        if let username { mosquitto_username_pw_set(h, username, nil) }
        mosquitto_message_callback_set(h) { _, obj, msg in
            guard let obj, let msg else { return }
            let now = monotonicNanos()
            let m = msg.pointee
            let payload = m.payloadlen > 0 ? Array(UnsafeRawBufferPointer(start: m.payload, count: Int(m.payloadlen))) : []
            let s = Unmanaged<Subscriber>.fromOpaque(obj).takeUnretainedValue()
            s.lock.lock()
            s.messages.append(Message(topic: String(cString: m.topic), payload: payload, retained: m.retain, receivedNanos: now))
            s.lock.broadcast()
            s.lock.unlock()
        }
        mosquitto_subscribe_callback_set(h) { _, obj, _, _, _ in
            guard let obj else { return }
            let s = Unmanaged<Subscriber>.fromOpaque(obj).takeUnretainedValue()
            s.lock.lock(); s.subscribed += 1; s.lock.broadcast(); s.lock.unlock()
        }
        mosquitto_connect_callback_set(h) { mosq, obj, rc in
            guard let obj, rc == 0 else { return }
            let s = Unmanaged<Subscriber>.fromOpaque(obj).takeUnretainedValue()
            s.lock.lock()
            s.connected = true
            let topics = s.topics
            s.lock.broadcast()
            s.lock.unlock()
            // (Re)subscribe on every connect: after a broker restart without the session too.
            for t in topics { mosquitto_subscribe(mosq, nil, t, 1) }
        }
        mosquitto_publish_callback_set(h) { _, obj, mid in
            guard let obj else { return }
            let s = Unmanaged<Subscriber>.fromOpaque(obj).takeUnretainedValue()
            s.lock.lock(); s.published.insert(mid); s.lock.broadcast(); s.lock.unlock()
        }
        guard mosquitto_connect(h, "127.0.0.1", Int32(port), 30) == 0 else {
            mosquitto_destroy(h)
            throw HarnessError("subscriber cannot connect to 127.0.0.1:\(port)")
        }
        guard mosquitto_loop_start(h) == 0 else {
            mosquitto_destroy(h)
            throw HarnessError("mosquitto_loop_start")
        }
        return h
    }

    /// Publishes (QoS 1) and waits for the broker's PUBACK.
    public func publish(topic: String, payload: [UInt8], retain: Bool = false) throws {
        guard let mosq else { return }
        var mid: Int32 = 0
        let rc = payload.withUnsafeBytes { p in mosquitto_publish(mosq, &mid, topic, Int32(p.count), p.baseAddress, 1, retain) }
        guard rc == 0 else { throw HarnessError("publish failed: \(rc)") }
        try waitFor(timeout: 30, "puback") { self.published.contains(mid) }
    }

    private func waitFor(timeout: Double, _ what: String, _ done: () -> Bool) throws {
        lock.lock(); defer { lock.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !done() {
            // A wait that times out may still have been raced by the signal: look once more.
            if !lock.wait(until: deadline) && !done() { throw HarnessError("timed out waiting for \(what)") }
        }
    }

    public var all: [Message] { lock.lock(); defer { lock.unlock() }; return messages }

    public func on(_ topic: String) -> [Message] { all.filter { $0.topic == topic } }

    public func clear() { lock.lock(); messages = []; lock.unlock() }

    /// Waits until `predicate` holds over everything received, or the timeout passes; returns the messages.
    @discardableResult
    public func wait(timeout: Double, until predicate: ([Message]) -> Bool) -> [Message] {
        lock.lock(); defer { lock.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !predicate(messages) {
            if !lock.wait(until: deadline) { break }
        }
        return messages
    }

    /// Waits for the message matching `match` arriving after index `from`.
    public func next(after from: Int, timeout: Double, where match: (Message) -> Bool) -> (Int, Message)? {
        lock.lock(); defer { lock.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        var i = from
        while true {
            while i < messages.count {
                if match(messages[i]) { return (i, messages[i]) }
                i += 1
            }
            if !lock.wait(until: deadline) && i == messages.count { return nil }
        }
    }

    public var count: Int { lock.lock(); defer { lock.unlock() }; return messages.count }

    public func close() {
        guard let h = mosq else { return }
        mosquitto_disconnect(h)
        mosquitto_loop_stop(h, false)
        mosquitto_destroy(h)
        mosq = nil
    }

    deinit { close() }
}
