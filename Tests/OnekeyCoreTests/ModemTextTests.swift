import Testing
@testable import OnekeyCore

@Suite struct ModemTextTests {
    // 2026-11-23T00:05:00Z = 08:05 in Asia/Shanghai.
    static let raised = Timestamp(rfc3339: "2026-11-23T00:05:00.000Z")!

    static func page(resident: String = "陈婆婆", location: String = "双合店社区 3栋2单元401", grid: String = "第七网格",
                     kind: String = "panic", reason: String = "raised") -> PageSummary {
        PageSummary(outboxKey: "k1", alert: "01JABCDEFGHJKMNPQRS7X9Z4", member: "m-135", reason: reason, kind: kind,
                    resident: resident, location: location, gridName: grid, raisedAt: raised)
    }

    static func allFit(_ parts: [String]) -> Bool { parts.allSatisfy { UCS2.units($0) <= 70 } }

    @Test func shortPageIsOneMessageWithEverything() {
        let parts = SMSPageText.compose(Self.page(), timezone: "Asia/Shanghai")
        #expect(parts.count == 1)
        let t = parts[0]
        for needle in ["紧急呼救", "陈婆婆", "双合店社区 3栋2单元401", "第七网格", "08:05", "#S7X9Z4", "1确认", "2不能去", "3已处理"] {
            #expect(t.contains(needle), "\(needle) missing from \(t)")
        }
        #expect(Self.allFit(parts))
    }

    @Test func longPageIsTwoMessagesThatEachNameTheAlert() {
        let parts = SMSPageText.compose(Self.page(location: "双合店社区幸福里小区东区 13栋2单元401室 (进门左转, 钥匙在物业)"), timezone: "Asia/Shanghai")
        #expect(parts.count == 2)
        #expect(parts[0].hasPrefix("(1/2)#S7X9Z4") && parts[1].hasPrefix("(2/2)#S7X9Z4"))
        #expect(parts[0].contains("陈婆婆") && parts[0].contains("幸福里"))
        #expect(parts[1].contains("08:05") && parts[1].contains("第七网格") && parts[1].contains("3已处理"))
        #expect(Self.allFit(parts))
    }

    @Test func hugeNamesAndAddressesAreCutNeverAThirdPart() {
        let longName = String(repeating: "欧阳", count: 40), longPlace = String(repeating: "幸福里𠀋", count: 60)
        for (r, l, g) in [("陈婆婆", longPlace, "第七网格"), (longName, longPlace, String(repeating: "网", count: 200)),
                          (longName, "3栋", "第七网格"), ("", "", "")] {
            let parts = SMSPageText.compose(Self.page(resident: r, location: l, grid: g), timezone: "Asia/Shanghai")
            #expect(parts.count <= 2)
            #expect(Self.allFit(parts), "\(parts.map { UCS2.units($0) })")
            #expect(parts.allSatisfy { $0.contains("#S7X9Z4") })
            #expect(parts.joined().contains("08:05") && parts.joined().contains("3已处理"))
            // No surrogate pair is split: every part survives a UCS2 round trip unchanged.
            #expect(parts.allSatisfy { UCS2.decode(UCS2.encode($0)) == $0 && !$0.contains("\u{FFFD}") })
        }
    }

    @Test func timeIsInTheGatewayZoneAndReasonsAreNamed() {
        #expect(SMSPageText.clock(Self.raised, timezone: "Asia/Shanghai") == "08:05")
        #expect(SMSPageText.clock(Self.raised, timezone: "UTC") == "00:05")
        #expect(SMSPageText.clock(Self.raised, timezone: "Nowhere/Invalid") == "00:05")
        #expect(SMSPageText.clock(Timestamp(milliseconds: -60_000), timezone: "UTC") == "23:59")
        #expect(SMSPageText.compose(Self.page(reason: "cancelled"), timezone: "UTC")[0].contains("已取消"))
        #expect(SMSPageText.compose(Self.page(kind: "medical", reason: "escalated"), timezone: "UTC")[0].contains("医疗求助(仍未处理)"))
    }

    @Test func pageSummaryReadsThePagePayload() {
        let a = Alert(id: "01JABCDEFGHJKMNPQRS7X9Z4", device: "btn-chen-401", kind: .panic, grid: "grid-07", resident: "陈婆婆",
                      location: "3栋2单元401", raisedAt: Self.raised)
        let json = Payloads.page(a, member: "m-135", reason: .escalated, gridName: "第七网格", at: Self.raised, key: "msg-1")
        let p = PageSummary(outboxKey: "msg-1", payload: json.bytes)
        #expect(p == PageSummary(outboxKey: "msg-1", alert: a.id, member: "m-135", reason: "escalated", kind: "panic",
                                 resident: "陈婆婆", location: "3栋2单元401", gridName: "第七网格", raisedAt: Self.raised))
        #expect(PageSummary(outboxKey: "x", payload: Array("{\"id\":\"event\"}".utf8)) == nil)
        #expect(PageSummary(outboxKey: "x", payload: [0xFF, 0x00]) == nil)
    }
}
