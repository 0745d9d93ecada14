/*
 * Base64 for password files and the WebSocket handshake's accept key, by OpenSSL's
 * EVP_EncodeBlock and EVP_DecodeBlock. They do the coding; what is checked here is what they
 * let through: EVP_DecodeBlock skips blanks around the input, accepts '=' inside it and leaves
 * the padding's zero bytes in its output, and a damaged password line must be an error
 * instead.
 */
#include "b64.h"

#include <string.h>

#include <openssl/evp.h>

#define B64_DECODED_MAX 384 /* longer fields than any password file holds are refused */

size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
	return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static int b64_is_digit(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

long b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	uint8_t buf[B64_DECODED_MAX];
	size_t pad = 0, n;

	if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(buf))
		return -1;
	/* Padding: at most two '=', only at the end. */
	while (pad < 2 && in[len - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < len - pad; i++)
		if (!b64_is_digit(in[i]))
			return -1;
	if (EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len) != (int)(len / 4 * 3))
		return -1;
	n = len / 4 * 3 - pad;
	if (n > cap)
		return -1;
	memcpy(out, buf, n);
	return (long)n;
}
