#ifndef VIGIL_CCRYPTO_SHIM_H
#define VIGIL_CCRYPTO_SHIM_H
/* Debian's OpenSSL: libcrypto's digests (HMAC-MD5 for keepalived's IPsec AH adverts, MD5 of
   HTTP_GET bodies) and libssl's TLS client for SSL_GET. */
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/err.h>

/* Macros Swift cannot import. */
static const uint64_t vigil_ssl_op_ignore_unexpected_eof = SSL_OP_IGNORE_UNEXPECTED_EOF;
static inline long vigil_ssl_set_sni(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
#endif
