// libFuzzer target: a recv buffer of the IPVS generic-netlink socket, decoded as the daemon
// decodes it before and after the family is resolved, for either destination family.
import Addressing
import IPVS

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNetlink(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? IPVSNetlink.decode(bytes, ipvsFamilyID: nil)
    // Debian's kernel gives IPVS a dynamic id; the seeds use 0x23 (see the golden tests).
    _ = try? IPVSNetlink.decode(bytes, ipvsFamilyID: 0x23)
    _ = try? IPVSNetlink.decode(bytes, ipvsFamilyID: 0x23, destinationFamilyFallback: .ipv6)
    return 0
}
