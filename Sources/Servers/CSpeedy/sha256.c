// SHA-256 through OpenSSL's libcrypto: it uses the SHA-NI instructions where the CPU has them, and
// its SHA256_CTX is plain data we can save in an upload session and restore elsewhere.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <string.h>

#include "cspeedy.h"

_Static_assert(sizeof(SHA256_CTX) == SPEEDY_SHA256_STATE_BYTES, "SHA256_CTX layout changed");

int speedy_sha256_init(void *state) { return SHA256_Init((SHA256_CTX *)state); }

int speedy_sha256_update(void *state, const void *bytes, size_t length) {
    return SHA256_Update((SHA256_CTX *)state, bytes, length);
}

int speedy_sha256_final(const void *state, unsigned char *out32) {
    SHA256_CTX copy;
    memcpy(&copy, state, sizeof copy);
    return SHA256_Final(out32, &copy);
}

void speedy_sha512(const void *bytes, size_t length, unsigned char *out64) {
    SHA512((const unsigned char *)bytes, length, out64);
}
