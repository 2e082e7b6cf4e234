import Foundation
import Testing
import VigilTestSupport
import Addressing
@testable import VRRP

/// The capture corpus (tcpdump's regression captures, BSD licence in the folder) lives in the
/// repository under `Tests/testdata`, found from this file's path so the tests run from any
/// working directory and a fresh clone needs nothing beside it.
enum TestData {
    static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // VRRPTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repo root
        .appendingPathComponent("Tests/testdata/vrrp-pcaps", isDirectory: true)
        .standardizedFileURL

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static func jsonLines(_ name: String) throws -> [[String: Any]] {
        let text = String(decoding: try bytes(name), as: UTF8.self)
        return try text.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }
}

/// Classic libpcap files, read by hand (24-byte global header, 16-byte record headers).
/// Records whose captured length runs past the end of the file are cut short rather than
/// trusted, since the malformed corpus contains exactly such headers.
enum Pcap {
    struct File {
        var linkType: UInt32
        var frames: [[UInt8]]
    }

    static func parse(_ bytes: [UInt8]) throws -> File {
        guard bytes.count >= 24 else { throw PcapError.short }
        let magic = readUInt32(bytes, 0, littleEndian: true)
        let littleEndian: Bool
        switch magic {
        case 0xA1B2_C3D4, 0xA1B2_3C4D: littleEndian = true
        case 0xD4C3_B2A1, 0x4D3C_B2A1: littleEndian = false
        default: throw PcapError.badMagic
        }
        let linkType = readUInt32(bytes, 20, littleEndian: littleEndian) & 0x0FFF_FFFF
        var frames: [[UInt8]] = []
        var offset = 24
        while offset + 16 <= bytes.count {
            let captured = Int(readUInt32(bytes, offset + 8, littleEndian: littleEndian))
            offset += 16
            let end = min(bytes.count, offset + captured)
            frames.append(Array(bytes[offset..<end]))
            offset = end
        }
        return File(linkType: linkType, frames: frames)
    }

    enum PcapError: Error { case short, badMagic }

    static func readUInt32(_ bytes: [UInt8], _ offset: Int, littleEndian: Bool) -> UInt32 {
        let b = bytes[offset..<(offset + 4)].map(UInt32.init)
        return littleEndian ? b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24 : b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]
    }
}

/// What one Ethernet frame decodes to.
enum DecodedFrame {
    case ipv4(VRRPIPv4Packet, vrrpBytes: [UInt8])
    case ipv6(VRRPIPv6Packet, vrrpBytes: [UInt8])
}

enum FrameError: Error { case tooShort, unknownEtherType(UInt16) }

/// Strips the 14-byte Ethernet header and decodes the IP packet behind it.
func decodeEthernetFrame(_ frame: [UInt8], v3ChecksumAsV2: Bool = false) throws -> DecodedFrame {
    guard frame.count >= 14 else { throw FrameError.tooShort }
    let etherType = UInt16(frame[12]) << 8 | UInt16(frame[13])
    let ip = Array(frame[14...])
    switch etherType {
    case 0x0800:
        let packet = try decodeIPv4Packet(ip, v3ChecksumAsV2: v3ChecksumAsV2)
        return .ipv4(packet, vrrpBytes: Array(ip[packet.headerLength..<Int(packet.totalLength)]))
    case 0x86DD:
        let packet = try decodeIPv6Packet(ip)
        return .ipv6(packet, vrrpBytes: Array(ip[40...]))
    default:
        throw FrameError.unknownEtherType(etherType)
    }
}


func hex(_ text: String) -> [UInt8] {
    let digits = text.filter { !$0.isWhitespace }
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

func v4(_ text: String) -> IPv4Address { IPv4Address(text)! }
func v6(_ text: String) -> IPv6Address { IPv6Address(text)! }
func ip(_ text: String) -> IPAddress { IPAddress(text)! }

func seconds(_ value: Double) -> Int64 { Int64((value * 1_000_000).rounded()) }

/// Drives one machine in virtual time and records every action with its instant.
struct Harness {
    var machine: VRRPStateMachine
    var now: VRRPInstant = .zero
    var log: [(at: VRRPInstant, action: VRRPAction)] = []

    init(_ config: VRRPInstanceConfig, trackers: [VRRPTracker] = []) {
        machine = VRRPStateMachine(config: config, trackers: trackers)
    }

    @discardableResult
    mutating func send(_ event: VRRPEvent) -> [VRRPAction] {
        let actions = machine.handle(event, at: now)
        log += actions.map { (now, $0) }
        return actions
    }

    /// Moves the clock to `instant`, firing every deadline on the way exactly when it falls due.
    @discardableResult
    mutating func advance(to instant: VRRPInstant) -> [VRRPAction] {
        var actions: [VRRPAction] = []
        while let deadline = machine.nextDeadline, deadline <= instant {
            now = max(now, deadline)
            actions += send(.timerFired)
        }
        now = instant
        return actions
    }

    @discardableResult
    mutating func advance(by microseconds: Int64) -> [VRRPAction] { advance(to: now + microseconds) }

    /// Instants at which the machine changed into `state`.
    func transitions(to state: VRRPState) -> [VRRPInstant] {
        log.compactMap {
            if case .stateChanged(_, let to, _) = $0.action, to == state { return $0.at }
            return nil
        }
    }

    func adverts() -> [(at: VRRPInstant, advert: VRRPAdvert)] {
        log.compactMap {
            if case .sendAdvert(let advert) = $0.action { return ($0.at, advert) }
            return nil
        }
    }
}

extension VRRPInstanceConfig {
    /// A compact test configuration: VIP 10.0.0.100, source 10.0.0.<host>.
    static func test(
        host: UInt8 = 1, priority: UInt8 = 100, version: VRRPVersion = .v2, interval: Int64 = 1_000_000,
        initialState: VRRPInitialState? = nil, vips: [IPAddress] = [ip("10.0.0.100")]
    ) -> VRRPInstanceConfig {
        VRRPInstanceConfig(
            name: "VI_\(host)", vrid: 51, version: version, priority: priority, advertInterval: interval,
            initialState: initialState, virtualAddresses: vips, sourceAddress: .v4(IPv4Address(10, 0, 0, host)))
    }
}

/// An advert as a peer with the given priority would send it for `config`.
func peerAdvert(
    _ config: VRRPInstanceConfig, priority: UInt8, from host: UInt8 = 2, interval: Int64? = nil,
    ttl: UInt8? = 255, multicast: Bool = true
) -> VRRPEvent {
    var peer = config
    peer.priority = priority == 0 ? 1 : priority
    if let interval { peer.advertInterval = interval }
    peer.sourceAddress = .v4(IPv4Address(10, 0, 0, host))
    let advert = VRRPStateMachine(config: peer).advert(priority: priority)
    return .packetReceived(VRRPReceivedAdvert(advert: advert, source: peer.sourceAddress, ttl: ttl, isMulticast: multicast))
}
