import Testing
@testable import OnekeyCore

@Suite struct ModemParserTests {
    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func finalResultsAndInformation() {
        var p = ATLineParser()
        let lines = p.feed(Self.bytes("ATE0\r\r\nOK\r\n\r\n+CPIN: READY\r\n\r\nOK\r\n\r\n+CREG: 0,5\r\n\r\n+CSQ: 17,99\r\n"
            + "\r\n+CME ERROR: SIM not inserted\r\n\r\n+CMS ERROR: 500\r\n\r\nNO CARRIER\r\n\r\nBUSY\r\n\r\nNO ANSWER\r\n\r\nNO DIALTONE\r\n\r\nERROR\r\n"
            + "\r\n+CMGS: 42\r\n\r\nRING\r\n\r\n+CLIP: \"+8613800138000\",145,,,,0\r\n\r\n+CMTI: \"SM\",3\r\n\r\n+CREG: 1,\"1A2B\",\"00C3\"\r\n"))
        #expect(lines == [.echo("ATE0"), .final(.ok), .simState("READY"), .final(.ok), .registration(5), .signal(rssi: 17, ber: 99),
                          .final(.cmeError("SIM not inserted")), .final(.cmsError("500")), .final(.noCarrier), .final(.busy),
                          .final(.noAnswer), .final(.noDialtone), .final(.error), .messageReference(42), .ring,
                          .callerID("+8613800138000"), .newMessage(storage: "SM", index: 3), .registration(1)])
        #expect(p.skippedBytes == 0 && p.pendingBytes == 0)
    }

    @Test func promptWithoutLineEndAndMessageBody() {
        var p = ATLineParser()
        #expect(p.feed(Self.bytes("\r\n>")) == [])
        #expect(p.feed(Self.bytes(" ")) == [.prompt])
        let r = p.feed(Self.bytes("\r\n+CMGR: \"REC UNREAD\",\"002B0038\",\"\",\"26/11/23,09:00:00+32\"\r\n0031\r\n\r\nOK\r\n"))
        #expect(r == [.messageHeader(status: "REC UNREAD", sender: "002B0038"), .messageBody("0031"), .final(.ok)])
        // A body that looks like a result code is still the body; a header without body ends at OK.
        #expect(p.feed(Self.bytes("+CMGR: \"REC READ\",\"1\"\r\nOK\r\n")) == [.messageHeader(status: "REC READ", sender: "1"), .final(.ok)])
    }

    @Test func unsolicitedCodesInterleavedAndSplitAnywhere() {
        let text = "\r\n+CSQ: 20,99\r\n\r\n+CMTI: \"SM\",7\r\n\r\nOK\r\n"
        var all = [ATLine]()
        var p = ATLineParser()
        for b in Self.bytes(text) { all += p.feed([b]) }
        #expect(all == [.signal(rssi: 20, ber: 99), .newMessage(storage: "SM", index: 7), .final(.ok)])
    }

    @Test func garbageAndOverlongLinesAreSkippedAndCounted() {
        var p = ATLineParser()
        let r = p.feed([0x00, 0xFF, 0x07] + Self.bytes("O") + [0x80] + Self.bytes("K\r\n"))
        #expect(r == [.final(.ok)])
        #expect(p.skippedBytes == 4)
        let huge = [UInt8](repeating: 0x41, count: 100_000)
        #expect(p.feed(huge) == [])
        #expect(p.pendingBytes <= ATLineParser.maxLineBytes)
        #expect(p.feed(Self.bytes("\r\nOK\r\n")) == [.final(.ok)])
        #expect(p.overlongLines == 1 && p.skippedBytes >= 100_000)
    }

    @Test func fuzzNeverCrashesOnHostileInput() {
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        let vocabulary = ["\r\n", "OK", "> ", "+CMGR: \"REC UNREAD\",\"", "+CMTI: \"SM\",", "+CME ERROR: ", "+CREG: ",
                          "NO CARRIER", "9999999999999999999999", ",", "\"", "\u{1A}", "RDY", "ATE0\r", "+CMGS: -1"]
        for _ in 0..<300 {
            var input = [UInt8]()
            for _ in 0..<64 {
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                if seed >> 60 < 4 { input.append(UInt8(truncatingIfNeeded: seed >> 24)) }
                else { input += Self.bytes(vocabulary[Int(seed >> 33) % vocabulary.count]) }
            }
            ATLineParser.fuzz(input)
        }
        ATLineParser.fuzz([UInt8](repeating: 0x20, count: 50_000))
        ATLineParser.fuzz([])
    }
}

@Suite struct ModemUCS2Tests {
    @Test func roundTripsChineseAndSurrogatePairs() {
        #expect(UCS2.encode("陈婆婆") == "96485A465A46")
        #expect(UCS2.encode("+86") == "002B00380036")
        #expect(UCS2.encode("😀") == "D83DDE00")
        for s in ["", "双合店社区 3栋2单元401", "𠀋𠀍 emoji 😀 mixed", "\u{0}"] { #expect(UCS2.decode(UCS2.encode(s)) == s) }
        #expect(UCS2.decode("d83dde00") == "😀")
        #expect(UCS2.units("😀a") == 3)
    }

    @Test func rejectsMalformedHexAndKeepsLoneSurrogatesReadable() {
        #expect(UCS2.decode("123") == nil)
        #expect(UCS2.decode("12G4") == nil)
        #expect(UCS2.decode("D83D") == "\u{FFFD}")
        #expect(UCS2.decodeNumber("002B0038003600310033") == "+8613")
        #expect(UCS2.decodeNumber("+8613800138000") == "+8613800138000")
        #expect(UCS2.decodeNumber("13800138000") == "13800138000")
    }
}
