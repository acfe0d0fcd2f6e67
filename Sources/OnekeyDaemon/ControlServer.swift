import CSystemd
import Foundation
import Glibc
import Logging
import OnekeyCore
import OnekeyLinux

/// The control socket (CONTRACT §8): a Unix stream socket, one JSON request per line, one JSON
/// response per line, served on the event loop. No client can hurt the alarm path:
/// - input is read to EAGAIN/EOF, so a client that sends half a line and closes is closed at once;
/// - a request line is at most 64 KiB; a client holds at most one request and one answer at a
///   time (it is not read while its answer waits), so memory per client is bounded by one answer,
///   and answers of any size are written whole as the socket drains;
/// - at most `maxClients` at once: a newcomer evicts the longest-idle client, or is told `busy`;
/// - EMFILE/ENFILE on accept pauses the listener for a while instead of spinning;
/// - every repeated log line is rate-limited.
final class ControlServer {
    let path: String
    unowned let gateway: Gateway
    private var listener: Int32 = -1
    private var listenerSource: EventLoop.IO?
    private var acceptPause: EventLoop.Timer?
    private var pauseSeconds = 0.1
    private var sweep: EventLoop.Timer?
    private var clients: [Int32: Client] = [:]

    static let maxLine = 64 * 1024
    static let maxClients = Int(ProcessInfo.processInfo.environment["ONEKEYD_CONTROL_MAX_CLIENTS"] ?? "") ?? 128
    static let idleLimitNanos: UInt64 = 300_000_000_000

    final class Client {
        let fd: Int32
        var source: EventLoop.IO?
        let peer: PeerCredentials
        var input: [UInt8] = []
        var output: [UInt8] = []
        var written = 0
        /// A request is being answered (maybe off the loop): nothing more is read meanwhile.
        var busy = false
        var eof = false
        var closeAfterAnswer = false
        var lastActive: UInt64
        init(fd: Int32, peer: PeerCredentials, now: UInt64) { self.fd = fd; self.peer = peer; lastActive = now }
        var idle: Bool { !busy && output.isEmpty }
    }

    init(path: String, gateway: Gateway) {
        self.path = path
        self.gateway = gateway
    }

    var clientCount: Int { clients.count }

    /// Binds the socket (mode 0660) and starts accepting.
    func start() throws {
        if let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/") as String?, !dir.isEmpty {
            mkdir(dir, 0o750)
        }
        listener = try UnixSocket.listen(path: path, mode: 0o660)
        listenerSource = try gateway.loop.addIO(fd: listener) { [unowned self] _ in acceptClients() }
        acceptPause = try gateway.loop.addTimer() { [unowned self] in
            listenerSource?.setEnabled(true)
        }
        sweep = try gateway.loop.addTimer() { [unowned self] in sweepIdle() }
        sweep?.arm(afterSeconds: 30)
        gateway.logger.info("control socket listening on \(path) (at most \(Self.maxClients) clients)")
    }

    func stop() {
        listenerSource?.cancel()
        listenerSource = nil
        acceptPause?.cancel()
        sweep?.cancel()
        for c in Array(clients.values) { drop(c) }
        if listener >= 0 { close(listener); unlink(path); listener = -1 }
    }

    // MARK: Accepting

    private func acceptClients() {
        for _ in 0..<64 {  // then let the loop serve others; level-triggered, we come back
            let fd: Int32?
            do { fd = try UnixSocket.accept(listener) } catch {
                if [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errno) {
                    // Out of descriptors: stop accepting for a while (the backlog waits) rather
                    // than wake up for the same error forever; free an idle client if we have one.
                    listenerSource?.setEnabled(false)
                    acceptPause?.arm(afterSeconds: pauseSeconds)
                    gateway.logLimited("control-accept", .error, "control socket: \(error); not accepting for \(pauseSeconds) s (\(clients.count) client(s) connected)")
                    pauseSeconds = min(5, pauseSeconds * 2)
                    if let victim = longestIdle() { drop(victim) }
                } else {
                    gateway.logLimited("control-accept", .error, "control socket: \(error)")
                }
                return
            }
            guard let fd else { pauseSeconds = 0.1; return }
            let now = monotonicNanos()
            let peer = (try? UnixSocket.peerCredentials(fd)) ?? PeerCredentials(pid: 0, uid: uid_t.max, gid: gid_t.max)
            if clients.count >= Self.maxClients {
                if let victim = longestIdle() {
                    drop(victim)
                } else {
                    let refusal = Array(#"{"ok":false,"error":"too many control clients; try again","code":"busy"}"#.utf8) + [10]
                    _ = refusal.withUnsafeBytes { p in send(fd, p.baseAddress, p.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) }
                    close(fd)
                    gateway.logLimited("control-full", .warning, "control socket: \(clients.count) clients busy; refused a connection")
                    continue
                }
            }
            let c = Client(fd: fd, peer: peer, now: now)
            do {
                c.source = try gateway.loop.addIO(fd: fd) { [unowned self, unowned c] revents in ready(c, revents) }
            } catch {
                close(fd)
                gateway.logLimited("control-accept", .error, "control socket: \(error)")
                continue
            }
            clients[fd] = c
        }
    }

    private func longestIdle() -> Client? {
        clients.values.filter(\.idle).min { $0.lastActive < $1.lastActive }
    }

    private func sweepIdle() {
        let now = monotonicNanos()
        for c in Array(clients.values) where c.idle && now &- c.lastActive > Self.idleLimitNanos { drop(c) }
        sweep?.arm(afterSeconds: 30)
    }

    // MARK: One client

    private func ready(_ c: Client, _ revents: UInt32) {
        if revents & UInt32(EPOLLOUT.rawValue) != 0 {
            flush(c)
            guard clients[c.fd] === c else { return }
        }
        if revents & UInt32(EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 && !c.busy && c.output.isEmpty {
            readInput(c)
        }
    }

    /// Reads to EAGAIN or EOF (bounded by the line limit), then serves complete lines.
    private func readInput(_ c: Client) {
        var chunk = [UInt8](repeating: 0, count: 16384)
        while !c.eof && c.input.count <= Self.maxLine {
            let n: Int
            do { n = try syscall("read control client") { read(c.fd, &chunk, chunk.count) } } catch {
                if error.wouldBlock { break }
                drop(c)
                return
            }
            if n == 0 { c.eof = true; break }
            c.input += chunk[0..<n]
        }
        c.lastActive = monotonicNanos()
        serve(c)
    }

    /// Answers the next complete line, if the client is free to take an answer; closes the
    /// client once it has hung up and nothing is owed to it.
    private func serve(_ c: Client) {
        guard clients[c.fd] === c else { return }
        if c.idle, let nl = c.input.firstIndex(of: 10) {
            let line = Array(c.input[..<nl])
            c.input.removeFirst(nl + 1)
            c.busy = true
            gateway.control(line, peer: c.peer) { [weak self, weak c] answer in
                guard let self, let c, clients[c.fd] === c else { return }
                c.busy = false
                c.output = answer + [10]
                c.written = 0
                flush(c)
            }
            if clients[c.fd] === c { updateInterest(c) }
            return
        }
        if c.idle && c.input.count > Self.maxLine {
            c.input = []
            c.closeAfterAnswer = true
            gateway.logLimited("control-long-line", .warning, "control client (uid \(c.peer.uid)) sent a request line over \(Self.maxLine / 1024) KiB; closing it")
            c.output = ControlError(.usage, "request line longer than \(Self.maxLine) bytes").response.bytes + [10]
            flush(c)
            return
        }
        if c.idle && c.eof { drop(c); return }  // hung up: a partial line is discarded
        updateInterest(c)
    }

    /// Writes what the socket takes now; the rest when it is writable again.
    private func flush(_ c: Client) {
        while c.written < c.output.count {
            let n = c.output.withUnsafeBytes { p in
                send(c.fd, p.baseAddress! + c.written, min(p.count - c.written, 1 << 20), Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
            }
            if n > 0 { c.written += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { updateInterest(c); return }
            drop(c)  // EPIPE, ECONNRESET: the client left
            return
        }
        c.output = []
        c.written = 0
        c.lastActive = monotonicNanos()
        if c.closeAfterAnswer { drop(c); return }
        serve(c)  // the next pipelined request, or EOF
    }

    /// Read interest only while the client may send its next request, write interest only
    /// while an answer is owed; neither (source off) while a request is being worked on, so a
    /// hung-up peer's EPOLLHUP cannot spin the loop.
    private func updateInterest(_ c: Client) {
        guard let source = c.source else { return }
        let wantWrite = !c.output.isEmpty
        let wantRead = !c.busy && !wantWrite && !c.eof
        if !wantRead && !wantWrite { source.setEnabled(false); return }
        source.setEvents((wantRead ? UInt32(EPOLLIN.rawValue) : 0) | (wantWrite ? UInt32(EPOLLOUT.rawValue) : 0))
        source.setEnabled(true)
    }

    private func drop(_ c: Client) {
        guard clients[c.fd] === c else { return }
        clients[c.fd] = nil
        c.source?.cancel()
        c.source = nil
        close(c.fd)
    }
}
