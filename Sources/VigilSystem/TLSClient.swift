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
///
/// Unlike keepalived, a check resumes the TLS session the previous check of the same server
/// (address, port and SNI) left, as HAProxy's checks do: the server still decrypts and
/// answers, without a certificate signature and its parsing per check. A session that ended in
/// a TLS error is forgotten, so the next check after one makes a full handshake.
public final class TLSClientContext: @unchecked Sendable {
    let context: OpaquePointer
    private let password: [CChar]?
    /// The last resumable session by server; bounded by the number of servers checked.
    private var resumable: [String: OpaquePointer] = [:]
    static let resumableLimit = 8192

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

    deinit {
        for session in resumable.values { SSL_SESSION_free(session) }
        SSL_CTX_free(context)
    }

    /// A session on a connected socket; `serverName` is sent as SNI. It resumes the last
    /// session with the same peer and name, if one is kept.
    public func session(fd: Int32, serverName: String?) -> (any TLSSession)? {
        guard let ssl = SSL_new(context) else { return nil }
        guard SSL_set_fd(ssl, fd) == 1 else {
            SSL_free(ssl)
            return nil
        }
        if let serverName { _ = vigil_ssl_set_sni(ssl, serverName) }
        let key = Self.peer(of: fd).map { "\($0)|\(serverName ?? "")" }
        if let key, let kept = resumable[key] { _ = SSL_set_session(ssl, kept) }
        SSL_set_connect_state(ssl)
        return OpenSSLSession(ssl, context: self, key: key)
    }

    /// Called as a session ends: keep what it can resume, or forget the server's.
    fileprivate func ended(_ ssl: OpaquePointer, key: String?, cleanly: Bool) {
        guard let key else { return }
        if let old = resumable.removeValue(forKey: key) { SSL_SESSION_free(old) }
        guard cleanly, let session = SSL_get1_session(ssl) else { return }
        guard SSL_SESSION_is_resumable(session) == 1, resumable.count < Self.resumableLimit else {
            SSL_SESSION_free(session)
            return
        }
        resumable[key] = session
    }

    /// The peer's address and port as text (the socket is connected when TLS starts).
    private static func peer(of fd: Int32) -> String? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        guard rc == 0 else { return nil }
        return withUnsafeBytes(of: storage) { Array($0.prefix(Int(length))) }.map { String($0, radix: 16) }.joined()
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
    /// Strong: a fetch in flight may outlive a reload that replaced the context.
    private let context: TLSClientContext
    private let key: String?
    /// No error seen: what it negotiated may be resumed by the next check.
    private var clean = true

    init(_ ssl: OpaquePointer, context: TLSClientContext, key: String?) {
        self.ssl = ssl
        self.context = context
        self.key = key
    }

    deinit { SSL_free(ssl) }

    var resumed: Bool { SSL_session_reused(ssl) == 1 }

    private func step(_ rc: Int32) -> TLSStep {
        let outcome = classify(rc)
        if case .failed = outcome { clean = false }
        return outcome
    }

    private func classify(_ rc: Int32) -> TLSStep {
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
        context.ended(ssl, key: key, cleanly: clean && SSL_is_init_finished(ssl) == 1)
        ERR_clear_error()
    }
}
