import Addressing

extension IPAddress {
    /// The 16 bytes of `union nf_inet_addr`: IPv4 occupies the first four, the rest is zero.
    var nfInetAddr: [UInt8] {
        switch self {
        case .v4(let a): a.bytes + Array(repeating: 0, count: 12)
        case .v6(let a): a.bytes
        }
    }
}
