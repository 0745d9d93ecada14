/*
 * Mosquitto password files: parsing, checking, and making hashes (for starling-passwd).
 *
 * The database is an array sorted by user name, searched by bisection: a CONNECT looks one
 * user up, and the PBKDF2 that follows costs a thousand times more than the search. Mosquitto
 * trims blanks around the user name and the hash; so do we. A user name may hold any byte but
 * ':' and the newline (Mosquitto splits at the first ':').
 */
#include "passwd.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/b64.h"
#include "file.h"
#include "starling/error.h"

static bool pw_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void pw_trim(const char **s, size_t *n)
{
	while (*n > 0 && pw_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && pw_blank((*s)[*n - 1]))
		(*n)--;
}

/* Cuts the next '$'-separated field off [*s, end). */
static bool pw_field(const char **s, const char *end, const char **f, size_t *n)
{
	const char *d;

	if (*s > end)
		return false;
	d = memchr(*s, '$', (size_t)(end - *s));
	*f = *s;
	*n = (size_t)((d ? d : end) - *s);
	*s = d ? d + 1 : end + 1;
	return true;
}

int auth_pw_parse_hash(const char *s, size_t len, struct auth_pw_entry *e, char *why, size_t whylen)
{
	const char *end = s + len, *f = NULL;
	size_t n = 0;
	long got;

	if (len < 3 || s[0] != '$' || (s[1] != '6' && s[1] != '7') || s[2] != '$') {
		snprintf(why, whylen, "the hash does not start with $6$ or $7$");
		return -1;
	}
	e->kind = s[1] == '7' ? AUTH_PW_SHA512_PBKDF2 : AUTH_PW_SHA512;
	e->iterations = 0;
	s += 3;
	if (e->kind == AUTH_PW_SHA512_PBKDF2) {
		unsigned long it = 0;

		if (!pw_field(&s, end, &f, &n))
			n = 0;
		for (size_t i = 0; i < n; i++) {
			if (f[i] < '0' || f[i] > '9' || it > AUTH_PW_ITERATIONS_MAX) {
				it = 0;
				break;
			}
			it = it * 10 + (unsigned long)(f[i] - '0');
		}
		if (n == 0 || it < 1 || it > AUTH_PW_ITERATIONS_MAX) {
			snprintf(why, whylen, "bad iteration count (1 to %u)",
			         AUTH_PW_ITERATIONS_MAX);
			return -1;
		}
		e->iterations = (uint32_t)it;
	}
	if (!pw_field(&s, end, &f, &n) || (got = b64_decode(f, n, e->salt, sizeof(e->salt))) < 1) {
		snprintf(why, whylen, "bad salt (base64, 1 to %d bytes)", AUTH_PW_SALT_MAX);
		return -1;
	}
	e->salt_len = (uint32_t)got;
	if (!pw_field(&s, end, &f, &n) || s != end + 1 ||
	    b64_decode(f, n, e->hash, sizeof(e->hash)) != AUTH_PW_HASH_LEN) {
		snprintf(why, whylen, "bad hash (base64 of %d bytes, last on the line)",
		         AUTH_PW_HASH_LEN);
		return -1;
	}
	return 0;
}

static int pw_cmp(const void *a, const void *b)
{
	const struct auth_pw_entry *x = a, *y = b;

	if (x->user_len != y->user_len)
		return x->user_len < y->user_len ? -1 : 1;
	return memcmp(x->user, y->user, x->user_len);
}

/* One non-blank, non-comment line into e. Returns 0 or -1 with why. */
static int pw_parse_line(const char *s, size_t n, struct auth_pw_entry *e, char *why, size_t whylen)
{
	const char *colon = memchr(s, ':', n), *h;
	size_t ulen, hlen;

	if (!colon) {
		snprintf(why, whylen, "expected user:hash");
		return -1;
	}
	ulen = (size_t)(colon - s);
	h = colon + 1;
	hlen = n - ulen - 1;
	pw_trim(&s, &ulen);
	pw_trim(&h, &hlen);
	if (ulen == 0 || ulen > AUTH_PW_USER_MAX) {
		snprintf(why, whylen, "empty or overlong user name");
		return -1;
	}
	if (memchr(h, ':', hlen)) {
		snprintf(why, whylen, "more than one ':'");
		return -1;
	}
	if (auth_pw_parse_hash(h, hlen, e, why, whylen) != 0)
		return -1;
	e->user = malloc(ulen + 1);
	if (!e->user) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	memcpy(e->user, s, ulen);
	e->user[ulen] = '\0';
	e->user_len = ulen;
	return 0;
}

/* Whether the line is one to skip: blank, or a comment. */
static bool pw_skip(const char *s, size_t n)
{
	pw_trim(&s, &n);
	return n == 0 || s[0] == '#';
}

int auth_pw_parse(const char *path, const char *text, size_t len, struct auth_pw **out, char *err,
                  size_t errlen)
{
	const char *p = text, *end = text + len, *s;
	struct auth_pw *db = calloc(1, sizeof(*db));
	size_t cap = 0, n;
	unsigned line = 0;
	char why[128];

	if (!db)
		goto nomem;
	while ((s = auth_next_line(&p, end, &n)) != NULL) {
		line++;
		if (pw_skip(s, n))
			continue;
		if (memchr(s, '\0', n)) {
			snprintf(err, errlen, "%s:%u: NUL byte in line", path, line);
			goto bad;
		}
		if (db->count == cap) {
			struct auth_pw_entry *ne;

			cap = cap ? cap * 2 : 16;
			ne = realloc(db->entries, cap * sizeof(*ne));
			if (!ne)
				goto nomem;
			db->entries = ne;
		}
		if (pw_parse_line(s, n, &db->entries[db->count], why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%u: %s", path, line, why);
			goto bad;
		}
		db->count++;
	}
	if (db->count)
		qsort(db->entries, db->count, sizeof(*db->entries), pw_cmp);
	for (size_t i = 1; i < db->count; i++)
		if (pw_cmp(&db->entries[i - 1], &db->entries[i]) == 0) {
			/* Mosquitto keeps one of the two silently; which one is an accident. */
			snprintf(err, errlen, "%s: user \"%s\" appears twice", path,
			         db->entries[i].user);
			goto bad;
		}
	*out = db;
	return ST_OK;
nomem:
	snprintf(err, errlen, "%s: out of memory", path);
	auth_pw_free(db);
	return ST_ERR_NOMEM;
bad:
	auth_pw_free(db);
	return ST_ERR_CONFIG;
}

int auth_pw_load(const char *path, struct auth_pw **out, char *err, size_t errlen)
{
	char *text;
	size_t len;
	int rc = auth_read_file(path, &text, &len, err, errlen);

	if (rc != ST_OK)
		return rc;
	rc = auth_pw_parse(path, text, len, out, err, errlen);
	free(text);
	return rc;
}

void auth_pw_free(struct auth_pw *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < db->count; i++)
		free(db->entries[i].user);
	free(db->entries);
	free(db);
}

const struct auth_pw_entry *auth_pw_find(const struct auth_pw *db, const uint8_t *user, size_t len)
{
	size_t lo = 0, hi = db->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct auth_pw_entry *e = &db->entries[mid];
		int c = e->user_len != len ? (e->user_len < len ? -1 : 1)
		                           : memcmp(e->user, user, len);

		if (c == 0)
			return e;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The digest of password under e's kind, salt and iterations. */
static bool pw_digest(const struct auth_pw_entry *e, const uint8_t *pw, size_t pwlen,
                      uint8_t out[AUTH_PW_HASH_LEN])
{
	unsigned int n = 0;
	EVP_MD_CTX *ctx;
	bool ok;

	if (e->kind == AUTH_PW_SHA512_PBKDF2)
		return PKCS5_PBKDF2_HMAC((const char *)pw, (int)pwlen, e->salt, (int)e->salt_len,
		                         (int)e->iterations, EVP_sha512(), AUTH_PW_HASH_LEN,
		                         out) == 1;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return false;
	ok = EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, pw, pwlen) == 1 &&
	     EVP_DigestUpdate(ctx, e->salt, e->salt_len) == 1 &&
	     EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == AUTH_PW_HASH_LEN;
	EVP_MD_CTX_free(ctx);
	return ok;
}

bool auth_pw_entry_check(const struct auth_pw_entry *e, const uint8_t *password, size_t pwlen)
{
	uint8_t d[AUTH_PW_HASH_LEN];

	if (pwlen > INT32_MAX || !pw_digest(e, password, pwlen, d))
		return false;
	return CRYPTO_memcmp(d, e->hash, AUTH_PW_HASH_LEN) == 0;
}

bool auth_pw_check(const struct auth_pw *db, const uint8_t *user, size_t ulen,
                   const uint8_t *password, size_t pwlen)
{
	/* An unknown user is hashed against this stand-in, so the answer takes as long as a
	 * wrong password and does not tell which user names exist. */
	static const struct auth_pw_entry decoy = {
	        .kind = AUTH_PW_SHA512_PBKDF2, .iterations = AUTH_PW_ITERATIONS, .salt_len = 12};
	const struct auth_pw_entry *e = auth_pw_find(db, user, ulen);

	if (!e) {
		(void)auth_pw_entry_check(&decoy, password, pwlen);
		return false;
	}
	return auth_pw_entry_check(e, password, pwlen);
}

int auth_pw_encode(enum auth_pw_kind kind, uint32_t iterations, const uint8_t *password,
                   size_t pwlen, char *out, size_t cap)
{
	struct auth_pw_entry e = {
	        .kind = kind, .iterations = iterations, .salt_len = AUTH_PW_SALT_LEN};
	char salt[AUTH_PW_SALT_MAX * 2], hash[AUTH_PW_HASH_LEN * 2];
	int n;

	if (cap < AUTH_PW_ENCODED_MAX || pwlen > INT32_MAX ||
	    (kind == AUTH_PW_SHA512_PBKDF2 &&
	     (iterations < 1 || iterations > AUTH_PW_ITERATIONS_MAX)))
		return ST_ERR_LIMIT;
	if (RAND_bytes(e.salt, (int)e.salt_len) != 1 || !pw_digest(&e, password, pwlen, e.hash))
		return ST_ERR_SYS;
	b64_encode(e.salt, e.salt_len, salt);
	b64_encode(e.hash, AUTH_PW_HASH_LEN, hash);
	if (kind == AUTH_PW_SHA512_PBKDF2)
		n = snprintf(out, cap, "$7$%u$%s$%s", iterations, salt, hash);
	else
		n = snprintf(out, cap, "$6$%s$%s", salt, hash);
	return n > 0 && (size_t)n < cap ? ST_OK : ST_ERR_LIMIT;
}
