#ifndef VIGIL_CCRYPTO_SHIM_H
#define VIGIL_CCRYPTO_SHIM_H
/* Debian's OpenSSL libcrypto: the digests (HMAC-MD5 for keepalived's IPsec AH adverts). */
#include <openssl/hmac.h>
#include <openssl/evp.h>
#endif
