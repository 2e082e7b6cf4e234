@preconcurrency import Glibc
import CCrypto
import TCPProbe

/// MD5 of an HTTP body as it arrives (the `digest` of a `url` block).
public final class MD5Digest: BodyDigest {
    private let context: OpaquePointer

    public init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_md5(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        EVP_DigestUpdate(context, bytes.baseAddress, bytes.count)
    }

    public func finish() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        var length: UInt32 = 16
        EVP_DigestFinal_ex(context, &out, &length)
        return out
    }

    public static func hex(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: digest.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
    }
}

public struct TLSClientError: Error, CustomStringConvertible {
    public var description: String
}

/// keepalived's SSL_GET client: one context from the top-level `SSL` block (client
/// certificate, key and its password, CA), and a session per fetch. As in keepalived, the
/// server's certificate never decides pass or fail (no verification, even with a CA): the
/// check is about the service answering, and an expired certificate must not empty a pool.
public final class TLSClientContext: @unchecked Sendable {
    let context: OpaquePointer
    private let password: [CChar]?

    public init(certificate: String? = nil, key: String? = nil, password: String? = nil, ca: String? = nil) throws(TLSClientError) {
        guard let made = SSL_CTX_new(TLS_client_method()) else { throw Self.failure("SSL_CTX_new") }
        context = made
        self.password = password.map { Array($0.utf8CString) }
        // A server that closes without close_notify (most do after HTTP/1.0) ends the body.
        _ = SSL_CTX_set_options(context, vigil_ssl_op_ignore_unexpected_eof)
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        if self.password != nil {
            SSL_CTX_set_default_passwd_cb_userdata(context, Unmanaged.passUnretained(self).toOpaque())
            SSL_CTX_set_default_passwd_cb(context) { buffer, size, _, user in
                guard let buffer, let user else { return 0 }
                let me = Unmanaged<TLSClientContext>.fromOpaque(user).takeUnretainedValue()
                guard let password = me.password else { return 0 }
                let length = min(Int(size) - 1, password.count - 1)
                for i in 0..<max(0, length) { buffer[i] = password[i] }
                return Int32(max(0, length))
            }
        }
        if let ca, SSL_CTX_load_verify_locations(context, ca, nil) != 1 {
            SSL_CTX_free(context)
            throw Self.failure("cannot read the CA file \(ca)")
        }
        if let certificate, SSL_CTX_use_certificate_chain_file(context, certificate) != 1 {
            SSL_CTX_free(context)
            throw Self.failure("cannot read the certificate \(certificate)")
        }
        if let key {
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1, SSL_CTX_check_private_key(context) == 1 else {
                SSL_CTX_free(context)
                throw Self.failure("cannot use the key \(key)")
            }
        }
    }

    deinit { SSL_CTX_free(context) }

    /// A session on a connected socket; `serverName` is sent as SNI.
    public func session(fd: Int32, serverName: String?) -> (any TLSSession)? {
        guard let ssl = SSL_new(context) else { return nil }
        guard SSL_set_fd(ssl, fd) == 1 else {
            SSL_free(ssl)
            return nil
        }
        if let serverName { _ = vigil_ssl_set_sni(ssl, serverName) }
        SSL_set_connect_state(ssl)
        return OpenSSLSession(ssl)
    }

    static func failure(_ what: String) -> TLSClientError {
        TLSClientError(description: "\(what): \(lastError() ?? "OpenSSL error")")
    }

    static func lastError() -> String? {
        let code = ERR_get_error()
        guard code != 0 else { return nil }
        var text = [CChar](repeating: 0, count: 256)
        let size = text.count
        ERR_error_string_n(code, &text, size)
        ERR_clear_error()
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

final class OpenSSLSession: TLSSession {
    private let ssl: OpaquePointer

    init(_ ssl: OpaquePointer) { self.ssl = ssl }

    deinit { SSL_free(ssl) }

    private func step(_ rc: Int32) -> TLSStep {
        if rc > 0 { return .done }
        let error = SSL_get_error(ssl, rc)
        switch error {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL:
            let e = errno
            let queued = TLSClientContext.lastError()
            if rc == 0 && queued == nil { return .closed }
            return .failed(queued ?? String(cString: strerror(e)))
        default:
            return .failed(TLSClientContext.lastError() ?? "SSL error \(error)")
        }
    }

    func handshake() -> TLSStep { step(SSL_connect(ssl)) }

    func write(_ bytes: UnsafeRawBufferPointer) -> (Int, TLSStep) {
        let rc = SSL_write(ssl, bytes.baseAddress, Int32(clamping: bytes.count))
        return rc > 0 ? (Int(rc), .done) : (0, step(rc))
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> (Int, TLSStep) {
        let rc = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
        return rc > 0 ? (Int(rc), .done) : (0, step(rc))
    }

    func shutDown() {
        ERR_clear_error()
    }
}
