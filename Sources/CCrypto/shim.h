// OpenSSL's libcrypto, for SHA-256 content hashes (file identity and cache keys) only.
#include <openssl/sha.h>
