@preconcurrency import Glibc
import CNetlink
import Testing
import Addressing
import VigilSystem

private let labSkip: Comment = "needs root and iproute2; set CI=true to turn a skip into a failure"
private let vip = IPv4Address(172, 16, 10, 40)
private let hostA = IPv4Address(172, 16, 10, 1)
private let hostB = IPv4Address(172, 16, 10, 2)

/// Waits for one packet on a VRRP socket, bounded so a lost packet fails instead of hanging.
private func receiveOne(_ socket: VRRPSocket, timeoutMs: Int64 = 2000) throws -> VRRPPacket? {
    let deadline = MonotonicClock.nowMicroseconds() + timeoutMs * 1000
    while case let left = (deadline - MonotonicClock.nowMicroseconds()) / 1000, left > 0 {
        if try Poller.wait(readable: [socket.fd], timeoutMs: Int32(left)).isEmpty { continue }
        if let packet = try socket.receive() { return packet }
    }
    return nil
}

@Suite("Local helpers")
struct LocalTests {
    @Test func checksumOfKnownAdvertIsValid() {
        let advert = vrrpV2Advert()
        #expect(advert.count == 20)
        #expect(rfc1071(advert) == 0)
    }

    @Test func ipv4HeaderMatchesKeepalived() {
        let header = VRRPSocket.ipv4Header(payloadLength: 20, source: hostA, destination: .vrrpMulticastGroup)
        #expect(header == [0x45, 0xC0, 0, 40, 0, 0, 0, 0, 255, 112, 0, 0, 172, 16, 10, 1, 224, 0, 0, 18])
    }

    @Test func garpFrameLayout() {
        let mac: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]
        let frame = GratuitousARP.frame(mac: mac, vip: vip)
        #expect(frame.count == 42)
        #expect(Array(frame[0..<6]) == [UInt8](repeating: 0xFF, count: 6))
        #expect(Array(frame[6..<12]) == mac)
        #expect(Array(frame[12..<14]) == [0x08, 0x06])
        #expect(Array(frame[20..<22]) == [0, 1])                    // REQUEST
        #expect(Array(frame[22..<28]) == mac)                       // sender HW
        #expect(Array(frame[28..<32]) == vip.bytes)                // sender IP
        #expect(Array(frame[32..<38]) == [UInt8](repeating: 0xFF, count: 6))
        #expect(Array(frame[38..<42]) == vip.bytes)                // target IP
    }

    @Test func neighbourAdvertFrameLayout() {
        let mac: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]
        let target = IPv6Address("fd00:10::40")!
        let frame = UnsolicitedNA.frame(mac: mac, vip: target, router: false)
        #expect(frame.count == 86)
        #expect(Array(frame[0..<6]) == [0x33, 0x33, 0, 0, 0, 1])
        #expect(Array(frame[12..<14]) == [0x86, 0xDD])
        #expect(frame[20] == 58 && frame[21] == 255)                 // ICMPv6, hop limit 255
        #expect(Array(frame[22..<38]) == target.bytes)              // source = VIP
        #expect(frame[54] == 136 && frame[58] == 0x20)                // NA, Override only
        #expect(Array(frame[62..<78]) == target.bytes)              // target
        #expect(Array(frame[78..<80]) == [2, 1] && Array(frame[80..<86]) == mac)
        #expect(ipv6UpperChecksum(source: target, destination: .allNodes, nextHeader: 58, Array(frame[54...])) == 0)
        #expect(UnsolicitedNA.frame(mac: mac, vip: target, router: true)[58] == 0xA0)
    }

    @Test func addressParsing() {
        #expect(IPv4Address("224.0.0.18") == .vrrpMulticastGroup)
        #expect(IPv4Address("300.1.1.1") == nil)
        #expect(IPv6Address("fe80::1")?.isLinkLocal == true)
        #expect(IPAddress("fd00::40")?.description == "fd00::40")
        #expect(IPAddress("10.0.0.1")?.maxPrefixLength == 32)
    }

    @Test func pollerTimesOutAndClockIsMonotonic() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let start = MonotonicClock.nowMicroseconds()
        #expect(try Poller.wait(readable: [fds[0]], timeoutMs: 50).isEmpty)
        let elapsed = MonotonicClock.nowMicroseconds() - start
        #expect(elapsed >= 45_000 && elapsed < 1_000_000)
        _ = write(fds[1], "x", 1)
        #expect(try Poller.wait(readable: [fds[0]], timeoutMs: 1000) == [fds[0]])
    }

    @Test func missingInterfaceIsReportedByName() {
        #expect(!InterfaceInfo.exists("vgt-nope0"))
        #expect(InterfaceInfo.exists("lo"))
        do {
            _ = try VRRPSocket(interface: "vgt-nope0")
            Issue.record("expected an error")
        } catch {
            #expect(error.errno == ENODEV)
            #expect(error.description.contains("vgt-nope0"))
        }
    }
}

@Suite("Between two network namespaces", .serialized, .enabled(if: Env.labEnabled, labSkip))
struct NamespaceTests {
    @Test func multicastAdvertArrivesWithTTL255AndTOS() throws {
        let lab = try NetnsLab("mc")
        defer { lab.destroy() }
        let receiver = try lab.inside(lab.b) { try VRRPSocket(interface: "vb") }
        let sender = try lab.inside(lab.a) { try VRRPSocket(interface: "va") }
        let advert = vrrpV2Advert()
        try sender.send(advert, from: hostA)

        let packet = try #require(try receiveOne(receiver))
        #expect(packet.source == hostA)
        #expect(packet.destination == .vrrpMulticastGroup)
        #expect(packet.ttl == 255)
        #expect(packet.tos == 0xC0)
        #expect(packet.ipProtocol == 112)
        #expect(packet.headerLength == 20)
        #expect(packet.totalLength == packet.bytes.count)
        #expect(packet.bytes[6] & 0x40 == 0, "DF must not be set")
        #expect(Array(packet.payload) == advert)
        #expect(rfc1071(Array(packet.payload)) == 0)
    }

    @Test func unicastAdvertReachesPeer() throws {
        let lab = try NetnsLab("uc")
        defer { lab.destroy() }
        let receiver = try lab.inside(lab.b) { try VRRPSocket(interface: "vb", mode: .unicast(local: hostB)) }
        let multicastOnly = try lab.inside(lab.b) { try VRRPSocket(interface: "vb") }
        let sender = try lab.inside(lab.a) { try VRRPSocket(interface: "va", mode: .unicast(local: hostA)) }
        let advert = vrrpV2Advert(vrid: 5, priority: 150)
        try sender.send(advert, from: hostA, to: hostB)

        let packet = try #require(try receiveOne(receiver))
        #expect(packet.destination == hostB)
        #expect(packet.ttl == 255)
        #expect(Array(packet.payload) == advert)
        #expect(try multicastOnly.receive() == nil, "a group-bound socket must not see unicast adverts")
    }

    @Test func senderDoesNotHearItself() throws {
        let lab = try NetnsLab("loop")
        defer { lab.destroy() }
        let (sender, listener) = try lab.inside(lab.a) {
            (try VRRPSocket(interface: "va"), try VRRPSocket(interface: "va"))
        }
        try sender.send(vrrpV2Advert(), from: hostA)
        #expect(try receiveOne(listener, timeoutMs: 300) == nil)
    }

    @Test(.enabled(if: Env.tcpdumpEnabled, "needs tcpdump"))
    func tcpdumpSeesValidChecksums() throws {
        let lab = try NetnsLab("dump")
        defer { lab.destroy() }
        let sender = try lab.inside(lab.a) { try VRRPSocket(interface: "va") }
        let output = try lab.tcpdump(in: lab.b, ["-v", "-i", "vb", "ip proto 112"]) {
            try sender.send(vrrpV2Advert(), from: hostA)
        }
        #expect(output.contains("tos 0xc0, ttl 255"), "\(output)")
        #expect(output.contains("flags [none]"), "\(output)")
        #expect(output.contains("172.16.10.1 > 224.0.0.18: VRRPv2, Advertisement, vrid 77, prio 100, authtype simple, intvl 1s, length 20"), "\(output)")
        #expect(output.contains("addrs: 172.16.10.40 auth \"11111"), "\(output)")
        #expect(!output.contains("bad"), "\(output)")
    }

    @Test(.enabled(if: Env.tcpdumpEnabled, "needs tcpdump"))
    func tcpdumpFlagsACorruptChecksum() throws {
        // Control for the test above: proves "no bad" is a real check.
        let lab = try NetnsLab("bad")
        defer { lab.destroy() }
        let sender = try lab.inside(lab.a) { try VRRPSocket(interface: "va") }
        var advert = vrrpV2Advert()
        advert[7] ^= 0xFF
        let output = try lab.tcpdump(in: lab.b, ["-v", "-i", "vb", "ip proto 112"]) {
            try sender.send(advert, from: hostA)
        }
        #expect(output.contains("bad vrrp cksum"), "\(output)")
    }

    @Test func ipv6AdvertArrivesWithHopLimit255() throws {
        let lab = try NetnsLab("mc6")
        defer { lab.destroy() }
        let receiver = try lab.inside(lab.b) { try VRRPSocket6(interface: "vb") }
        // The kernel assigns the link-local address a moment after the link comes up.
        let (sender, source) = try lab.inside(lab.a) {
            let linkLocalDeadline = MonotonicClock.nowMicroseconds() + 3_000_000
            var linkLocal = try InterfaceInfo.lookup("va").linkLocalIPv6
            while linkLocal == nil, MonotonicClock.nowMicroseconds() < linkLocalDeadline {
                _ = try Poller.wait(readable: [], timeoutMs: 50)
                linkLocal = try InterfaceInfo.lookup("va").linkLocalIPv6
            }
            return (try VRRPSocket6(interface: "va"), try #require(linkLocal))
        }
        let advert = vrrpV3Advert(vips: [IPv6Address("fd00:10::40")!])
        var packet: VRRPPacket6?
        let deadline = MonotonicClock.nowMicroseconds() + 3_000_000
        // The peer's link-local may still be settling right after the lab comes up.
        while packet == nil, MonotonicClock.nowMicroseconds() < deadline {
            try sender.send(advert, from: source)
            if try !Poller.wait(readable: [receiver.fd], timeoutMs: 200).isEmpty { packet = try receiver.receive() }
        }
        let got = try #require(packet)
        #expect(got.source == source)
        #expect(got.destination == .vrrpMulticastGroup)
        #expect(got.hopLimit == 255)
        #expect(got.payload.count == advert.count)
        #expect(Array(got.payload[0..<6]) == Array(advert[0..<6]) && Array(got.payload[8...]) == Array(advert[8...]))
        #expect(ipv6UpperChecksum(source: source, destination: .vrrpMulticastGroup, nextHeader: 112, got.payload) == 0)
    }

    @Test(.enabled(if: Env.tcpdumpEnabled, "needs tcpdump"))
    func ipv6TrafficClassAndNeighbourAdvertOnTheWire() throws {
        let lab = try NetnsLab("na")
        defer { lab.destroy() }
        let target = IPv6Address("fd00:10::40")!
        let (sender, source, na) = try lab.inside(lab.a) {
            (try VRRPSocket6(interface: "va"), try #require(try InterfaceInfo.lookup("va").linkLocalIPv6),
             try UnsolicitedNA(interface: "va"))
        }
        let vrrp = try lab.tcpdump(in: lab.b, ["-v", "-i", "vb", "ip6 proto 112"]) {
            try sender.send(vrrpV3Advert(vips: [target]), from: source)
        }
        #expect(vrrp.contains("class 0xc0") && vrrp.contains("hlim 255"), "\(vrrp)")
        #expect(vrrp.contains("VRRPv3, Advertisement, vrid 77, prio 100, intvl 100cs"), "\(vrrp)")

        let advert = try lab.tcpdump(in: lab.b, ["-v", "-e", "-i", "vb", "icmp6 and ip6[40] == 136"]) {
            try na.send(for: target, router: false)
        }
        #expect(advert.contains("> 33:33:00:00:00:01"), "\(advert)")
        #expect(advert.contains("fd00:10::40 > ff02::1: [icmp6 sum ok]"), "\(advert)")
        #expect(advert.contains("neighbor advertisement, length 32, tgt is fd00:10::40, Flags [override]"), "\(advert)")
        #expect(!advert.contains("bad"), "\(advert)")
    }

    @Test func gratuitousARPIsReceivedByPeer() throws {
        let lab = try NetnsLab("garp")
        defer { lab.destroy() }
        let info = try lab.inside(lab.a) { try InterfaceInfo.lookup("va") }
        let garp = try lab.inside(lab.a) { try GratuitousARP(interface: "va") }
        #expect(garp.mac == info.mac)
        // Capture every ARP frame arriving on vb.
        let capture = try lab.inside(lab.b) { () throws -> Int32 in
            let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue), Int32(UInt16(0x0806).bigEndian))
            guard fd >= 0 else { throw LabError(description: "AF_PACKET socket: errno \(errno)") }
            var ll = sockaddr_ll()
            ll.sll_family = UInt16(AF_PACKET)
            ll.sll_protocol = UInt16(0x0806).bigEndian
            ll.sll_ifindex = Int32(if_nametoindex("vb"))
            let rc = withUnsafePointer(to: &ll) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_ll>.size)) }
            }
            guard rc == 0 else { close(fd); throw LabError(description: "bind AF_PACKET: errno \(errno)") }
            return fd
        }
        defer { close(capture) }
        try garp.send(for: vip)

        var frame: [UInt8] = []
        let deadline = MonotonicClock.nowMicroseconds() + 2_000_000
        while frame.isEmpty, MonotonicClock.nowMicroseconds() < deadline {
            guard try !Poller.wait(readable: [capture], timeoutMs: 200).isEmpty else { continue }
            var buffer = [UInt8](repeating: 0, count: 1500)
            let n = recv(capture, &buffer, buffer.count, 0)
            // Skip the kernel's own ARP traffic; ours has sender IP = target IP = VIP.
            if n >= 42, Array(buffer[28..<32]) == vip.bytes { frame = Array(buffer[0..<42]) }
        }
        #expect(frame == GratuitousARP.frame(mac: info.mac, vip: vip))
    }

    @Test func interfaceInfoInNamespace() throws {
        let lab = try NetnsLab("info")
        defer { lab.destroy() }
        let manager = try lab.inside(lab.a) { try AddressManager() }
        let ifindex = try lab.inside(lab.a) { try InterfaceInfo.index(of: "va") }
        // A secondary in the same subnet must not displace the primary.
        try manager.add(AddressSpec(ifindex: ifindex, address: .v4(vip), prefixLength: 24))
        // The kernel makes the link-local address only once the veth's carrier is seen
        // (linkwatch, up to a second after `link set up`), so wait for it rather than race it.
        var info = try lab.inside(lab.a) { try InterfaceInfo.lookup("va") }
        let deadline = MonotonicClock.nowMicroseconds() + 5_000_000
        while info.linkLocalIPv6 == nil, MonotonicClock.nowMicroseconds() < deadline {
            usleep(50_000)
            info = try lab.inside(lab.a) { try InterfaceInfo.lookup("va") }
        }
        let shown = try Shell.run(["ip", "-n", lab.a, "-o", "link", "show", "va"]).output

        #expect(info.index == ifindex)
        #expect(shown.hasPrefix("\(ifindex): va@"))
        let macText = info.mac.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
            .joined(separator: ":")
        #expect(info.mac.count == 6 && shown.contains("link/ether \(macText)"), "\(shown)")
        #expect(info.isUp && !info.isNoARP)
        #expect(info.primaryIPv4 == hostA)
        #expect(info.linkLocalIPv6?.isLinkLocal == true)
        #expect(try lab.inside(lab.a) { InterfaceInfo.exists("va") && !InterfaceInfo.exists("vb") })
        #expect(try lab.inside(lab.a) { InterfaceInfo.name(ofIndex: ifindex) } == "va")

        try Shell.run(["ip", "-n", lab.a, "link", "set", "va", "arp", "off", "down"])
        let after = try lab.inside(lab.a) { try InterfaceInfo.lookup("va") }
        #expect(!after.isUp && after.isNoARP)
    }

    @Test func addressAddListRemove() throws {
        let lab = try NetnsLab("addr")
        defer { lab.destroy() }
        let manager = try lab.inside(lab.a) { try AddressManager() }
        let ifindex = try lab.inside(lab.a) { try InterfaceInfo.index(of: "va") }
        let spec = AddressSpec(ifindex: ifindex, address: .v4(vip), prefixLength: 24, label: "va:vip",
                               broadcast: IPv4Address(172, 16, 10, 255))
        try manager.add(spec)

        let shown = try Shell.run(["ip", "-n", lab.a, "-4", "addr", "show", "dev", "va"]).output
        #expect(shown.contains("inet 172.16.10.40/24 brd 172.16.10.255 scope global secondary va:vip"), "\(shown)")
        let listed = try manager.list(ifindex: ifindex).first { $0.address == .v4(vip) }
        #expect(listed?.label == "va:vip")
        #expect(listed?.prefixLength == 24)
        #expect(listed?.isSecondary == true)
        #expect(listed?.broadcast == IPv4Address(172, 16, 10, 255))

        #expect(throws: AddressError.exists(.v4(vip), ifindex: ifindex)) { try manager.add(spec) }

        try manager.remove(spec)
        let gone = try Shell.run(["ip", "-n", lab.a, "-4", "addr", "show", "dev", "va"]).output
        #expect(!gone.contains("172.16.10.40"), "\(gone)")
        #expect(gone.contains("172.16.10.1/24"), "\(gone)")
        #expect(throws: AddressError.notFound(.v4(vip), ifindex: ifindex)) { try manager.remove(spec) }

        // The interface vanished: removal is a no-op, as keepalived treats ENODEV.
        try manager.remove(AddressSpec(ifindex: 9999, address: .v4(vip)))
        #expect(throws: AddressError.noDevice(ifindex: 9999)) {
            try manager.add(AddressSpec(ifindex: 9999, address: .v4(vip)))
        }
    }

    @Test func ipv6AddressIsAddedWithNoDAD() throws {
        let lab = try NetnsLab("addr6")
        defer { lab.destroy() }
        let manager = try lab.inside(lab.a) { try AddressManager() }
        let ifindex = try lab.inside(lab.a) { try InterfaceInfo.index(of: "va") }
        let address = IPAddress("fd00:10::40")!
        let spec = AddressSpec(ifindex: ifindex, address: address, prefixLength: 64)
        try manager.add(spec)
        let shown = try Shell.run(["ip", "-n", lab.a, "-6", "addr", "show", "dev", "va"]).output
        #expect(shown.contains("inet6 fd00:10::40/64 scope global nodad"), "\(shown)")
        #expect(try manager.list(ifindex: ifindex).first { $0.address == address }?.isNoDAD == true)
        try manager.remove(spec)
        let gone = try Shell.run(["ip", "-n", lab.a, "-6", "addr", "show", "dev", "va"]).output
        #expect(!gone.contains("fd00:10::40"), "\(gone)")
    }
}
