import Dispatch
import Glibc
import Logging
import OnekeyCore
import OnekeyLinux

/// The control socket (CONTRACT §8): a Unix stream socket, one JSON request per line, one JSON
/// response per line. Served on the gateway queue, so a command sees a consistent state.
final class ControlServer: @unchecked Sendable {
    let path: String
    unowned let gateway: Gateway
    private var listener: Int32 = -1
    private var source: DispatchSourceRead?
    private var clients: [Int32: Client] = [:]

    final class Client {
        let fd: Int32
        let source: DispatchSourceRead
        var buffer: [UInt8] = []
        /// Answers not yet taken by a slow reader; never written with the gateway queue blocked.
        var pending: [UInt8] = []
        var writer: DispatchSourceWrite?
        /// Sources still registered on `fd`; the last one's cancel handler closes it.
        var sources = 1
        let uid: uid_t
        let gid: gid_t
        init(fd: Int32, source: DispatchSourceRead, uid: uid_t, gid: gid_t) {
            self.fd = fd; self.source = source; self.uid = uid; self.gid = gid
        }
        func sourceCancelled() {
            sources -= 1
            if sources == 0 { close(fd) }
        }
    }

    static let maxPending = 1 << 20

    init(path: String, gateway: Gateway) {
        self.path = path
        self.gateway = gateway
    }

    /// Binds the socket (mode 0660). Call on the gateway queue.
    func start() throws {
        if let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/") as String?, !dir.isEmpty {
            mkdir(dir, 0o750)
        }
        listener = try UnixSocket.listen(path: path, mode: 0o660)
        let src = DispatchSource.makeReadSource(fileDescriptor: listener, queue: gateway.queue)
        src.setEventHandler { [weak self] in self?.acceptClients() }
        let fd = listener
        src.setCancelHandler { close(fd) }
        src.activate()
        source = src
        gateway.logger.info("control socket listening on \(path)")
    }

    func stop() {
        source?.cancel()
        source = nil
        for c in Array(clients.values) { drop(c) }
        clients = [:]
        if listener >= 0 { unlink(path); listener = -1 }
    }

    private func acceptClients() {
        while true {
            let fd: Int32?
            do { fd = try UnixSocket.accept(listener) } catch {
                gateway.logger.error("control socket: \(error)")
                return
            }
            guard let fd else { return }
            let cred = (try? UnixSocket.peerCredentials(fd)) ?? (pid: 0, uid: uid_t.max, gid: gid_t.max)
            let src = DispatchSource.makeReadSource(fileDescriptor: fd, queue: gateway.queue)
            let client = Client(fd: fd, source: src, uid: cred.uid, gid: cred.gid)
            src.setEventHandler { [weak self] in self?.readClient(client) }
            src.setCancelHandler { client.sourceCancelled() }
            clients[fd] = client
            src.activate()
        }
    }

    private func readClient(_ c: Client) {
        let chunk: [UInt8]?
        do { chunk = try readAvailable(c.fd, what: "control client") } catch { drop(c); return }
        guard let chunk else { drop(c); return }
        c.buffer += chunk
        while let nl = c.buffer.firstIndex(of: 10) {
            let line = Array(c.buffer[..<nl])
            c.buffer.removeFirst(nl + 1)
            respond(c, to: line)
        }
        if c.buffer.count > 65536 {
            respond(c, to: Array(c.buffer.prefix(64)))  // answers with a parse error
            drop(c)
        }
    }

    private func respond(_ c: Client, to line: [UInt8]) {
        let response = gateway.control(line, peerUID: c.uid, peerGID: c.gid)
        c.pending += response.bytes + [10]
        flush(c)
    }

    /// Writes what the client will take now; the rest waits for the socket to be writable.
    private func flush(_ c: Client) {
        while !c.pending.isEmpty {
            let n = c.pending.withUnsafeBytes { write(c.fd, $0.baseAddress, $0.count) }
            if n > 0 { c.pending.removeFirst(n); continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
            drop(c)
            return
        }
        if c.pending.count > Self.maxPending {
            gateway.logger.warning("control client does not read its answers; dropping it")
            drop(c)
        } else if c.pending.isEmpty {
            c.writer?.cancel()
            c.writer = nil
        } else if c.writer == nil {
            let w = DispatchSource.makeWriteSource(fileDescriptor: c.fd, queue: gateway.queue)
            w.setEventHandler { [weak self] in self?.flush(c) }
            c.sources += 1
            w.setCancelHandler { c.sourceCancelled() }
            w.activate()
            c.writer = w
        }
    }

    private func drop(_ c: Client) {
        guard clients.removeValue(forKey: c.fd) != nil else { return }
        c.writer?.cancel()
        c.writer = nil
        c.source.cancel()
    }
}
