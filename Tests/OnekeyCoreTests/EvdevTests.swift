import Testing
@testable import OnekeyCore

@Suite struct EvdevTests {
    @Test func keyDownIsAPanicAndEverythingElseIsIgnored() {
        var d = EvdevDecoder(address: "FootSwitch_PCsensor_0001")
        let down = EvdevDecoder.record(type: 1, code: 30, value: 1)
        let stream = EvdevDecoder.record(type: 4, code: 4, value: 458_756) + down + EvdevDecoder.record(type: 0, code: 0, value: 0)
            + EvdevDecoder.record(type: 1, code: 30, value: 2) + EvdevDecoder.record(type: 1, code: 30, value: 0)
        let r = d.feed(stream)
        #expect(r.frames == [DecodedFrame(driver: .evdev, address: "FootSwitch_PCsensor_0001", code: "30", kind: .panic, raw: down)])
        #expect(r.skippedBytes == 0 && d.pendingBytes == 0)
    }

    @Test func recordsSplitAcrossReads() {
        var d = EvdevDecoder(address: "/dev/input/event5")
        var frames = [DecodedFrame]()
        for chunk in stride(from: 0, to: 48, by: 7).map({ i in Array((EvdevDecoder.record(type: 1, code: 2, value: 1) + EvdevDecoder.record(type: 1, code: 3, value: 1))[i..<min(i + 7, 48)]) }) {
            frames += d.feed(chunk).frames
        }
        #expect(frames.map(\.code) == ["2", "3"])
    }
}
