/*
 * Base64 (RFC 4648, standard alphabet, '=' padding) as Mosquitto's password files use it for
 * salts and hashes. Strict: a length that is not a multiple of four, a byte outside the
 * alphabet or padding anywhere but the end is an error, so a damaged line is noticed.
 */
#ifndef STARLING_BASE_B64_H
#define STARLING_BASE_B64_H

#include <stddef.h>
#include <stdint.h>

/* Encodes n bytes into out (room for 4 * ceil(n / 3) + 1 bytes, NUL-terminated). Returns the
 * characters written. */
size_t b64_encode(const uint8_t *in, size_t n, char *out);

/* Decodes len characters into out (at most cap bytes). Returns the bytes decoded, or -1. */
long b64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

#endif
