import CSystemd
import Glibc
import Logging
import OnekeyCore
import OnekeyLinux

/// One serial port (or input device) bound by path: opened in raw mode, read to EAGAIN when the
/// event loop says it is readable, and reopened with backoff (1 s doubling to 30 s) when it
/// disappears or fails, e.g. a USB receiver unplugged and plugged back.
final class PortReader {
    let config: PortConfig
    unowned let gateway: Gateway
    var decoder: any FrameDecoder
    private var fd: Int32 = -1
    private var source: EventLoop.IO?
    private var retry: EventLoop.Timer?
    private var backoffSeconds = 1.0
    private var stopped = false
    private(set) var lastError: String?
    private(set) var openedAt: Timestamp?
    private(set) var bytesRead = 0

    init(config: PortConfig, gateway: Gateway) {
        self.config = config
        self.gateway = gateway
        self.decoder = DriverTable.decoder(for: config.driver, address: Self.enrolmentAddress(config, gateway.config))
    }

    /// An evdev device may be enrolled by its /dev path or its udev ID_SERIAL; frames carry
    /// whichever the configuration uses.
    static func enrolmentAddress(_ port: PortConfig, _ config: GatewayConfig) -> String {
        if config.devices.contains(where: { $0.driver == .evdev && $0.address == port.path }) { return port.path }
        return port.serial ?? port.path
    }

    var isOpen: Bool { fd >= 0 }
    var logger: Logger { gateway.logger }
    private var meta: Logger.Metadata { ["port": "\(config.path)"] }

    /// Opens the port now; on failure schedules a retry.
    func open() {
        guard !stopped, fd < 0 else { return }
        do {
            if config.driver.isSerial {
                fd = try SerialPort.open(config.path, line: SerialLine(baud: config.baud, parity: config.parity, dataBits: config.dataBits))
            } else {
                let (descriptor, grabbed) = try InputDevice.open(config.path)
                fd = descriptor
                if !grabbed { logger.warning("could not grab \(config.path) (EVIOCGRAB): other readers see its keys too", metadata: meta) }
            }
            source = try gateway.loop.addIO(fd: fd, priority: .alarm) { [unowned self] _ in readReady() }
        } catch {
            if fd >= 0 { Glibc.close(fd); fd = -1 }
            if lastError != "\(error)" {
                logger.error("cannot open port \(config.path): \(error); retrying", metadata: meta)
            }
            lastError = "\(error)"
            scheduleRetry()
            return
        }
        let settings = config.driver.isSerial ? "\(config.baud) \(config.dataBits)\(config.parity.rawValue.prefix(1).uppercased())1" : "grabbed input device"
        logger.notice("port \(config.path) open (\(config.driver.rawValue), \(settings))", metadata: meta)
        lastError = nil
        backoffSeconds = 1
        openedAt = gateway.clock.now().wall
        decoder = DriverTable.decoder(for: config.driver, address: Self.enrolmentAddress(config, gateway.config))  // fresh: no half frame from before
        gateway.summaryChanged()
    }

    static let readSize = 4096

    /// Reads everything waiting (until a short read, EAGAIN or 64 KiB), then hands it to the
    /// gateway in one piece, so the frames of one wake-up are committed together.
    private func readReady() {
        guard fd >= 0 else { return }
        var gathered: [UInt8] = []
        var failure: String?
        while gathered.count < 1 << 16 {
            let chunk: [UInt8]?
            do { chunk = try readAvailable(fd, max: Self.readSize, what: config.path) } catch { failure = "\(error)"; break }
            guard let chunk else { failure = "end of file (device gone)"; break }
            if chunk.isEmpty { break }
            gathered += chunk
            // A short read drained the port: the loop is level-triggered and wakes again for more,
            // so a read that would only say EAGAIN is not made on the path of every press.
            if chunk.count < Self.readSize { break }
        }
        if !gathered.isEmpty {
            bytesRead += gathered.count
            gateway.received(gathered, from: self)
        }
        if let failure { fail(failure) }
    }

    private func fail(_ why: String) {
        gateway.logLimited("port-failed:\(config.path)", .error, "port \(config.path) failed: \(why); reopening", metadata: meta)
        lastError = why
        closeDescriptor()
        gateway.summaryChanged()
        scheduleRetry()
    }

    private func scheduleRetry() {
        guard !stopped else { return }
        let delay = backoffSeconds
        backoffSeconds = min(30, backoffSeconds * 2)
        if retry == nil { retry = try? gateway.loop.addTimer() { [unowned self] in open() } }
        retry?.arm(afterSeconds: delay)
    }

    private func closeDescriptor() {
        source?.cancel()
        source = nil
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Answers the device (a receiver's ACK/NAK). A failed write is logged; the receiver resends.
    func reply(_ bytes: [UInt8]) {
        guard fd >= 0 else { return }
        do { try writeAll(fd, bytes, what: config.path, timeoutMs: 500) } catch {
            gateway.logLimited("port-reply:\(config.path)", .error, "port \(config.path): cannot answer the receiver: \(error)", metadata: meta)
        }
    }

    /// Stops reading for good (shutdown, or the port left the configuration).
    func stop() {
        stopped = true
        retry?.cancel()
        retry = nil
        closeDescriptor()
    }

    /// Garbage is counted always and logged rate-limited per port.
    func noteGarbage(_ n: Int) {
        gateway.logLimited("port-garbage:\(config.path)", .notice, "port \(config.path): skipped \(n) byte(s) of garbage or truncated frames", metadata: meta)
    }

    func statusJSON() -> JSON {
        .object([("path", .string(config.path)), ("driver", .string(config.driver.rawValue)),
                 ("state", .string(isOpen ? "open" : "closed")), ("since", .optional(isOpen ? openedAt : nil)),
                 ("error", .optional(lastError)), ("bytes", .int(Int64(bytesRead)))])
    }
}
