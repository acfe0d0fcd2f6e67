import Foundation
import Glibc

/// The broker's host name looked up on a `LoopWorker`, off the event loop. libmosquitto
/// resolves inside `mosquitto_connect_async` with a blocking `getaddrinfo`: with a name and a DNS
/// server that does not answer, every connect attempt would hold the loop — frames, timers, the
/// watchdog — for the resolver's timeout (glibc: 5 s × 2 attempts per nameserver).
enum BrokerResolver {
    enum Answer: Sendable {
        /// Numeric addresses in the resolver's order, duplicates removed.
        case addresses([String])
        case failed(String)
    }

    /// An IPv4 or IPv6 literal: nothing to look up.
    static func isAddress(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    static func lookUp(_ host: String) -> Answer {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0 else {
            return .failed(rc == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(rc)))
        }
        defer { freeaddrinfo(list) }
        var out: [String] = []
        var node = list
        while let ai = node {
            var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(ai.pointee.ai_addr, ai.pointee.ai_addrlen, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 {
                let a = String(cString: text)
                if !out.contains(a) { out.append(a) }
            }
            node = ai.pointee.ai_next
        }
        return out.isEmpty ? .failed("no address") : .addresses(out)
    }
}
