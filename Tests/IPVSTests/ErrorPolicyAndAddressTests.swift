import Testing
import Addressing
import IPVS

@Suite struct ErrorPolicyTests {
    let service = IPVSService(tcp80, scheduler: "wlc")
    let dest = IPVSDestination(rs21, forwarding: .directRoute, weight: 2)

    @Test func keepalivedSuccessRules() {
        #expect(IPVSErrorPolicy.disposition(of: .addService(service), errno: 0) == .success)
        #expect(IPVSErrorPolicy.disposition(of: .addService(service), errno: LinuxErrno.EEXIST) == .success)
        #expect(IPVSErrorPolicy.disposition(of: .addDestination(dest, to: tcp80), errno: 17) == .success)
        #expect(IPVSErrorPolicy.disposition(of: .deleteDestination(rs21, from: tcp80), errno: 2) == .success)
        #expect(IPVSErrorPolicy.disposition(of: .deleteService(tcp80), errno: 2) == .success)
        // The kernel's "no such service" on deletes: already gone (see the doc comment).
        #expect(IPVSErrorPolicy.disposition(of: .deleteService(tcp80), errno: 3) == .success)
        #expect(IPVSErrorPolicy.disposition(of: .deleteDestination(rs21, from: tcp80), errno: 3) == .success)
        // Negative errnos, as NLMSG_ERROR carries them, are accepted too.
        #expect(IPVSErrorPolicy.disposition(of: .addService(service), errno: -17) == .success)
    }

    @Test func setDestENOENTRetriesAsNew() {
        #expect(IPVSErrorPolicy.disposition(of: .editDestination(dest, in: tcp80), errno: 2)
            == .retryAsNew(.addDestination(dest, to: tcp80)))
    }

    @Test func failuresCarryKeepalivedsLine() {
        #expect(IPVSErrorPolicy.disposition(of: .addDestination(dest, to: tcp80), errno: 3) == .failure(message:
            "IPVS cmd IP_VS_SO_SET_ADDDEST(1159) error: Service not defined(3) ([10.0.0.1]:tcp:80 -> [192.168.0.21]:tcp:80)"))
        #expect(IPVSErrorPolicy.disposition(of: .editService(service), errno: 3) == .failure(message:
            "IPVS cmd IP_VS_SO_SET_EDIT(1155) error: No such service(3) ([10.0.0.1]:tcp:80)"))
        #expect(IPVSErrorPolicy.disposition(of: .addService(service), errno: 2) == .failure(message:
            "IPVS cmd IP_VS_SO_SET_ADD(1154) error: Scheduler or persistence engine not found(2) ([10.0.0.1]:tcp:80)"))
        // EEXIST on an edit is not covered by the add rule.
        #expect(IPVSErrorPolicy.disposition(of: .editDestination(dest, in: tcp80), errno: 17) == .failure(message:
            "IPVS cmd IP_VS_SO_SET_EDITDEST(1161) error: File exists(17) ([10.0.0.1]:tcp:80 -> [192.168.0.21]:tcp:80)"))
        #expect(IPVSErrorPolicy.disposition(of: .flush, errno: 1) == .failure(message:
            "IPVS cmd IP_VS_SO_SET_FLUSH(1157) error: Permission denied (you must be root)(1)"))
        let v6 = IPVSServiceKey.address(.udp, IPAddress("2001:db8::1")!, port: 53)
        let v6dest = IPVSDestinationKey(IPAddress("2001:db8::10")!, port: 53)
        #expect(IPVSErrorPolicy.disposition(of: .deleteDestination(v6dest, from: v6), errno: 22) == .failure(message:
            "IPVS cmd IP_VS_SO_SET_DELDEST(1160) error: Invalid operation.  Possibly wrong module version, address not unicast, ...(22) ([2001:db8::1]:udp:53 -> [2001:db8::10]:udp:53)"))
        #expect(IPVSErrorPolicy.disposition(of: .deleteService(.fwmark(1, family: .ipv4)), errno: 999) == .failure(message:
            "IPVS cmd IP_VS_SO_SET_DEL(1156) error: Unknown error 999(999) (FWM 1)"))
        #expect(IPVSErrorPolicy.message(for: .addDestination(dest, to: .fwmark(5, family: .ipv4)), errno: 12)
            == "IPVS cmd IP_VS_SO_SET_ADDDEST(1159) error: Memory allocation problem(12) (FWM 5 -> [192.168.0.21]:none:80)")
    }

    @Test func operationDescriptions() {
        #expect(IPVSOperation.addDestination(dest, to: tcp80).description
            == "NEW_DEST [10.0.0.1]:tcp:80 -> [192.168.0.21]:tcp:80 weight 2")
        #expect(IPVSOperation.deleteService(.fwmark(1, family: .ipv6)).description == "DEL_SERVICE FWM 1")
    }
}
