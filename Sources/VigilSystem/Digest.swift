import CCrypto

/// Digests through Debian's OpenSSL.
public enum Digest {
    /// HMAC-MD5 (RFC 2104), the 16 bytes.
    public static func hmacMD5(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        var length: UInt32 = 16
        _ = key.withUnsafeBytes { k in
            data.withUnsafeBytes { d in
                HMAC(EVP_md5(), k.baseAddress, Int32(k.count), d.baseAddress?.assumingMemoryBound(to: UInt8.self), d.count, &out, &length)
            }
        }
        return out
    }
}
