/*
 * Password files in Mosquitto's format, one `user:hash` per line:
 *   user:$7$ITERATIONS$SALT$HASH   PBKDF2-HMAC-SHA512 (Mosquitto 2.0's default, 101 iterations)
 *   user:$6$SALT$HASH              SHA-512 of the password followed by the salt (Mosquitto 1.x)
 * SALT and HASH are base64; the hash is 64 bytes. Blank lines and lines starting with '#' are
 * skipped. Unlike Mosquitto, which drops a damaged line with a log message, a line that is not
 * one of these is an error naming the file and line: a typo must not lock a user out quietly.
 *
 * Loaded once (startup, SIGHUP) into an immutable struct auth_pw that any number of workers
 * read at once. Checking a password costs one PBKDF2 (or one SHA-512) and happens once per
 * CONNECT that carries a user name, never on the message path. The comparison is constant
 * time (CRYPTO_memcmp), and an unknown user costs the same work as a known one.
 */
#ifndef STARLING_AUTH_PASSWD_H
#define STARLING_AUTH_PASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_PW_HASH_LEN       64      /* SHA-512 output, the only length Mosquitto writes */
#define AUTH_PW_SALT_MAX       64      /* longest salt accepted (Mosquitto writes 12 bytes) */
#define AUTH_PW_SALT_LEN       12      /* salt length starling-passwd writes */
#define AUTH_PW_ITERATIONS     101     /* Mosquitto 2.0's PW_DEFAULT_ITERATIONS */
#define AUTH_PW_ITERATIONS_MAX 1000000 /* bounds the work one CONNECT can cost a worker */
#define AUTH_PW_USER_MAX       65535   /* an MQTT string's length */
#define AUTH_PW_LINE_MAX       (AUTH_PW_USER_MAX + 256)
#define AUTH_PW_ENCODED_MAX    256 /* "$7$ITER$SALT$HASH" fits in this */

enum auth_pw_kind {
	AUTH_PW_SHA512 = 6,        /* $6$: SHA-512(password || salt) */
	AUTH_PW_SHA512_PBKDF2 = 7, /* $7$: PBKDF2-HMAC-SHA512(password, salt, iterations) */
};

/* One user's line, decoded. */
struct auth_pw_entry {
	char *user;                     /* NUL-terminated (owned by the database) */
	size_t user_len;                /* bytes of user */
	enum auth_pw_kind kind;         /* hash kind */
	uint32_t iterations;            /* PBKDF2 rounds ($7$ only) */
	uint8_t salt[AUTH_PW_SALT_MAX]; /* decoded salt */
	uint32_t salt_len;              /* bytes of salt */
	uint8_t hash[AUTH_PW_HASH_LEN]; /* decoded hash */
};

/* A loaded password file: entries sorted by user name. Immutable once loaded. */
struct auth_pw {
	struct auth_pw_entry *entries; /* sorted by (user_len, user) bytes */
	size_t count;                  /* entries */
};

/*
 * Parses the hash part of a line ("$7$..." or "$6$...") into e (user fields untouched).
 * Returns 0, or -1 with a reason in why[0..whylen).
 */
int auth_pw_parse_hash(const char *s, size_t len, struct auth_pw_entry *e, char *why,
                       size_t whylen);

/*
 * Loads a password file. On error returns ST_ERR_CONFIG (or ST_ERR_NOMEM) with
 * "FILE:LINE: reason" (or "FILE: reason") in err. *out: a new database the caller frees.
 */
int auth_pw_load(const char *path, struct auth_pw **out, char *err, size_t errlen);

/* Parses a whole file held in memory (text, len bytes; path only names it in errors). */
int auth_pw_parse(const char *path, const char *text, size_t len, struct auth_pw **out, char *err,
                  size_t errlen);

void auth_pw_free(struct auth_pw *db);

/* The entry of user (len bytes, not NUL-terminated), or NULL. */
const struct auth_pw_entry *auth_pw_find(const struct auth_pw *db, const uint8_t *user, size_t len);

/* Whether password (pwlen bytes) is user's. An unknown user does the same work and fails. */
bool auth_pw_check(const struct auth_pw *db, const uint8_t *user, size_t ulen,
                   const uint8_t *password, size_t pwlen);

/* Whether password matches entry e (constant-time comparison of the digests). */
bool auth_pw_entry_check(const struct auth_pw_entry *e, const uint8_t *password, size_t pwlen);

/*
 * Hashes password with a fresh random salt into out as "$7$ITER$SALT$HASH" (kind
 * AUTH_PW_SHA512_PBKDF2, iterations rounds) or "$6$SALT$HASH". cap: at least
 * AUTH_PW_ENCODED_MAX. Returns 0 or a negative ST_ERR_* code.
 */
int auth_pw_encode(enum auth_pw_kind kind, uint32_t iterations, const uint8_t *password,
                   size_t pwlen, char *out, size_t cap);

#endif
