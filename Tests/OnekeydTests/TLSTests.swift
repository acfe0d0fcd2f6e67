import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import Testing

/// TLS to the broker with certificate verification, against a CA this test generates.
@Suite(.serialized) struct TLSTests {
    /// A CA, a server certificate for 127.0.0.1 signed by it, and a second, unrelated CA.
    static func makePKI(_ dir: String) throws {
        let script = """
            set -e
            cd '\(dir)'
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=onekeyd test CA' -keyout ca.key -out ca.pem 2>/dev/null
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=impostor CA' -keyout other.key -out other.pem 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' -keyout server.key -out server.csr 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out server.pem 2>/dev/null
            chmod 0644 *.pem *.key
            """
        let r = try runCommand("/bin/bash", ["-c", script])
        guard r.status == 0 else { throw HarnessError("openssl failed: \(r.stderr)") }
    }

    @Test func connectsWhenTheCertificateIsRightAndRefusesWhenItIsNot() throws {
        let pki = try TempDirectory.make("pki")
        chmod(pki, 0o755)
        try Self.makePKI(pki)
        let tlsPort = try Broker.freePort()
        // The plain listener stays for the test's own subscriber; the daemon must use TLS.
        let rig = try Rig(brokerConfig: """
            listener \(tlsPort) 127.0.0.1
            allow_anonymous true
            cafile \(pki)/ca.pem
            certfile \(pki)/server.pem
            keyfile \(pki)/server.key
            """, start: false)
        let password = rig.daemon.directory + "/mqtt.secret"
        try "s3cret-never-logged\n".write(toFile: password, atomically: true, encoding: .utf8)
        func configure(ca: String) throws {
            let text = try String(contentsOfFile: rig.daemon.configPath, encoding: .utf8)
                .replacingOccurrences(of: "port = \(rig.broker.port)\n", with: "port = \(tlsPort)\ntls = true\nca_file = \"\(ca)\"\nusername = \"gw\"\npassword_file = \"\(password)\"\n")
                .replacingOccurrences(of: "ca_file = \"\(pki)/ca.pem\"", with: "ca_file = \"\(ca)\"")
            try rig.daemon.writeConfig(text)
        }

        // Right CA: connects, a press is paged.
        try configure(ca: pki + "/ca.pem")
        try rig.daemon.start()
        #expect(try rig.waitDelivered(timeout: 15))
        try rig.press("A1B2C")
        #expect(rig.sub.next(after: 0, timeout: 10) { $0.topic.hasSuffix("/pages") } != nil)
        #expect(try rig.daemon.control(["cmd": "status"])["mqtt"]?["tls"]?.boolValue == true)
        rig.daemon.stop()

        // Wrong CA: the broker's certificate does not verify; the daemon refuses, says so, keeps storing.
        try configure(ca: pki + "/other.pem")
        try rig.daemon.start()
        usleep(2_000_000)
        let status = try rig.daemon.control(["cmd": "status"])
        #expect(status["mqtt"]?["connected"]?.boolValue == false)
        let log = rig.daemon.log
        #expect(log.contains("certificate verify failed"), "log says why:\n\(log)")
        let before = rig.sub.count
        try rig.press("D4E5F")
        usleep(500_000)
        #expect(!rig.sub.all.dropFirst(before).contains { $0.topic.hasSuffix("/pages") }, "nothing went over an unverified link")
        #expect((try rig.daemon.control(["cmd": "outbox"])["count"]?.intValue ?? 0) > 0, "the press waits in the outbox")
        #expect(!log.contains("s3cret"), "the password never appears in the log")
        #expect(try !rig.ctl(["--json", "status"]).stdout.contains("s3cret"))
    }
}
