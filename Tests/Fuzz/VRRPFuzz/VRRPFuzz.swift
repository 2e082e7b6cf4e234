// libFuzzer target: everything a VRRP socket hands the daemon. IPv4 packets (with the IP
// header, as the raw socket gives them), IPsec-AH packets, IPv6 payloads and bare VRRP
// messages under both address families; a decoded advert is re-encoded and must decode again.
import Addressing
import VRRP

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVRRP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? decodeIPv4Packet(bytes)
    _ = try? decodeIPv4Packet(bytes, v3ChecksumAsV2: true)
    _ = try? IPsecAH.decodeIPv4(bytes)
    _ = try? decodeIPv6Packet(bytes)
    let v4 = VRRPEndpoints.ipv4(source: IPv4Address(192, 168, 1, 1), destination: IPv4Address(224, 0, 0, 18))
    let v6 = VRRPEndpoints.ipv6(source: IPv6Address("fe80::1")!, destination: IPv6Address("ff02::12")!)
    for endpoints in [v4, v6] {
        guard let advert = try? VRRPAdvert.decode(bytes, endpoints: endpoints) else { continue }
        // What decodes must survive the way back out and in, unchanged.
        if (try? VRRPAdvert.decode(advert.encode(endpoints: endpoints), endpoints: endpoints)) != advert {
            fatalError("an advert that decoded does not decode to itself after re-encoding")
        }
    }
    return 0
}
