import Dispatch
import Glibc
import Logging
import OnekeyCore
import OnekeyLinux

/// One serial port bound by path: opened in raw mode, read without blocking when the event loop
/// says it is readable, and reopened with backoff (1 s doubling to 30 s) when it disappears or
/// fails, e.g. a USB receiver unplugged and plugged back.
final class PortReader: @unchecked Sendable {
    let config: PortConfig
    unowned let gateway: Gateway
    var decoder: any FrameDecoder
    private var fd: Int32 = -1
    private var source: DispatchSourceRead?
    private var retry: DispatchWorkItem?
    private var backoffSeconds = 1.0
    private var stopped = false
    private(set) var lastError: String?
    private(set) var openedAt: Timestamp?
    private(set) var bytesRead = 0
    private var garbageSinceLog = 0
    private var lastGarbageLog: UInt64 = 0

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

    /// Opens the port now; on failure schedules a retry. Call on the gateway queue.
    func open() {
        dispatchPrecondition(condition: .onQueue(gateway.queue))
        guard !stopped, fd < 0 else { return }
        do {
            if config.driver.isSerial {
                fd = try SerialPort.open(config.path, line: SerialLine(baud: config.baud, parity: config.parity, dataBits: config.dataBits))
            } else {
                let (descriptor, grabbed) = try InputDevice.open(config.path)
                fd = descriptor
                if !grabbed { logger.warning("could not grab \(config.path) (EVIOCGRAB): other readers see its keys too", metadata: ["port": "\(config.path)"]) }
            }
        } catch {
            if lastError != "\(error)" {
                logger.error("cannot open port \(config.path): \(error); retrying", metadata: ["port": "\(config.path)"])
            }
            lastError = "\(error)"
            scheduleRetry()
            return
        }
        let settings = config.driver.isSerial ? "\(config.baud) \(config.dataBits)\(config.parity.rawValue.prefix(1).uppercased())1" : "grabbed input device"
        logger.notice("port \(config.path) open (\(config.driver.rawValue), \(settings))", metadata: ["port": "\(config.path)"])
        lastError = nil
        backoffSeconds = 1
        openedAt = gateway.clock.now().wall
        decoder = DriverTable.decoder(for: config.driver, address: Self.enrolmentAddress(config, gateway.config))  // fresh: no half frame from before
        let src = DispatchSource.makeReadSource(fileDescriptor: fd, queue: gateway.queue)
        src.setEventHandler { [weak self] in self?.readReady() }
        let descriptor = fd
        src.setCancelHandler { Glibc.close(descriptor) }
        src.activate()
        source = src
        gateway.summaryChanged()
    }

    private func readReady() {
        guard fd >= 0 else { return }
        while true {
            let chunk: [UInt8]?
            do { chunk = try readAvailable(fd, what: config.path) } catch {
                fail("\(error)")
                return
            }
            guard let chunk else { fail("end of file (device gone)"); return }
            if chunk.isEmpty { return }
            bytesRead += chunk.count
            gateway.received(chunk, from: self)
        }
    }

    private func fail(_ why: String) {
        logger.error("port \(config.path) failed: \(why); reopening", metadata: ["port": "\(config.path)"])
        lastError = why
        closeDescriptor()
        gateway.summaryChanged()
        scheduleRetry()
    }

    private func scheduleRetry() {
        guard !stopped else { return }
        let delay = backoffSeconds
        backoffSeconds = min(30, backoffSeconds * 2)
        let item = DispatchWorkItem { [weak self] in self?.open() }
        retry = item
        gateway.queue.asyncAfter(deadline: .now() + delay, execute: item)
    }

    private func closeDescriptor() {
        if let source {
            // The cancel handler closes the descriptor, once the event loop has let go of it.
            source.cancel()
            self.source = nil
        } else if fd >= 0 {
            Glibc.close(fd)
        }
        fd = -1
    }

    /// Answers the device (a receiver's ACK/NAK). A failed write is logged; the receiver resends.
    func reply(_ bytes: [UInt8]) {
        guard fd >= 0 else { return }
        do { try writeAll(fd, bytes, what: config.path, timeoutMs: 500) } catch {
            logger.error("port \(config.path): cannot answer the receiver: \(error)", metadata: ["port": "\(config.path)"])
        }
    }

    /// Stops reading for good (shutdown, or the port left the configuration).
    func stop() {
        dispatchPrecondition(condition: .onQueue(gateway.queue))
        stopped = true
        retry?.cancel()
        closeDescriptor()
    }

    /// Garbage is counted always and logged at most every 10 s per port.
    func noteGarbage(_ n: Int) {
        garbageSinceLog += n
        let now = monotonicNanos()
        if now - lastGarbageLog >= 10_000_000_000 {
            logger.notice("port \(config.path): skipped \(garbageSinceLog) byte(s) of garbage or truncated frames", metadata: ["port": "\(config.path)"])
            garbageSinceLog = 0
            lastGarbageLog = now
        }
    }

    func statusJSON() -> JSON {
        .object([("path", .string(config.path)), ("driver", .string(config.driver.rawValue)),
                 ("state", .string(isOpen ? "open" : "closed")), ("since", .optional(isOpen ? openedAt : nil)),
                 ("error", .optional(lastError)), ("bytes", .int(Int64(bytesRead)))])
    }
}
