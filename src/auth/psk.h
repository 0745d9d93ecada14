/*
 * TLS-PSK identities and keys: Mosquitto's psk_file, one `identity:key` per line, the key in
 * hexadecimal without "0x". Blank lines and lines starting with '#' are skipped; blanks
 * around the identity and the key are trimmed, as Mosquitto does. Where Mosquitto skips a
 * line without ':' and keeps the first of two lines for one identity, Starling refuses the
 * file naming the line: a typo must not lock a client out quietly. An empty key or one with a
 * character that is not a hex digit is an error in both.
 *
 * Keys are decoded as Mosquitto's clients and broker decode them (mosquitto__hex2bin, through
 * OpenSSL's BIGNUM): each leading "00" pair is a zero byte, the rest is the number's shortest
 * big-endian bytes. So "0abc" is 0a bc, and "000" is one zero byte: the same bytes
 * `mosquitto_pub --psk` derives from the same text, which is what a handshake needs.
 *
 * Loaded at start-up and on SIGHUP into an immutable table that any worker reads during a
 * TLS handshake (one bisection per PSK handshake).
 */
#ifndef STARLING_AUTH_PSK_H
#define STARLING_AUTH_PSK_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_PSK_IDENTITY_MAX 128 /* OpenSSL's PSK_MAX_IDENTITY_LEN */
#define AUTH_PSK_KEY_MAX      512 /* OpenSSL's PSK_MAX_PSK_LEN */

struct auth_psk_entry {
	char identity[AUTH_PSK_IDENTITY_MAX + 1]; /* NUL-terminated */
	uint8_t key[AUTH_PSK_KEY_MAX];            /* decoded key */
	uint32_t key_len;                         /* bytes of key, at least 1 */
};

/* A loaded psk_file: entries sorted by identity. Immutable once loaded. */
struct auth_psk {
	struct auth_psk_entry *entries;
	size_t count;
};

/*
 * Decodes hex[0..len) as Mosquitto does (above) into out (cap bytes). Returns the number of
 * bytes, or -1 when a character is not a hex digit, nothing is left (empty, or "0"), or it
 * does not fit.
 */
int auth_psk_hex(const char *hex, size_t len, uint8_t *out, size_t cap);

/* Loads a psk_file. ST_OK, or ST_ERR_CONFIG / ST_ERR_NOMEM with "FILE:LINE: reason" in err. */
int auth_psk_load(const char *path, struct auth_psk **out, char *err, size_t errlen);

void auth_psk_free(struct auth_psk *p);

/* The entry of identity (NUL-terminated), or NULL. */
const struct auth_psk_entry *auth_psk_find(const struct auth_psk *p, const char *identity);

#endif
