/*
 * Password files (src/auth/passwd.c): known vectors made once with Debian's mosquitto_passwd
 * 2.0.11 (both hash kinds), every malformed line naming its line, base64 edge cases, and
 * round trips through auth_pw_encode (what starling-passwd writes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "base/b64.h"
#include "auth/passwd.h"
#include "starling/error.h"
#include "testutil.h"

/* mosquitto_passwd -c -b f alice secret; mosquitto_passwd -H sha512 -b f bob pw2 */
static const char vectors[] =
        "# made by mosquitto_passwd 2.0.11\n"
        "alice:$7$101$3JlrRG92RJV5by42$BRaNuDr1r/6hd5zls49ANmwb+TS/kNOL+pJlGoCf2JR7m24+wRxZeA0"
        "GzLhYX2+bv+p0tVlTEBvJfa4BGmJcbg==\n"
        "\n"
        "bob:$6$IWtiV/9AG0kmeWNX$mMmYT0eVJAevHRMCt4Uno38/QH6NVPhYMg8pikZPFXBcW2V6S283UNZnvJFAx"
        "thLAUGI34gse5TcQHNftbAGrA==\r\n";

static char err[512];

static bool check(const struct auth_pw *db, const char *user, const char *pw)
{
	return auth_pw_check(db, (const uint8_t *)user, strlen(user), (const uint8_t *)pw,
	                     strlen(pw));
}

static void test_mosquitto_vectors(void)
{
	struct auth_pw *db = NULL;

	CU_ASSERT_EQUAL_FATAL(auth_pw_parse("f", vectors, strlen(vectors), &db, err, sizeof(err)),
	                      ST_OK);
	CU_ASSERT_EQUAL(db->count, 2);
	CU_ASSERT_TRUE(check(db, "alice", "secret"));
	CU_ASSERT_TRUE(check(db, "bob", "pw2"));
	CU_ASSERT_FALSE(check(db, "alice", "Secret"));
	CU_ASSERT_FALSE(check(db, "alice", "secret "));
	CU_ASSERT_FALSE(check(db, "alice", ""));
	CU_ASSERT_FALSE(check(db, "bob", "secret"));
	CU_ASSERT_FALSE(check(db, "carol", "secret"));
	CU_ASSERT_FALSE(check(db, "alic", "secret"));
	CU_ASSERT_EQUAL(auth_pw_find(db, (const uint8_t *)"alice", 5)->iterations, 101);
	CU_ASSERT_EQUAL(auth_pw_find(db, (const uint8_t *)"bob", 3)->kind, AUTH_PW_SHA512);
	auth_pw_free(db);
}

/* The line must be refused, naming "f:LINE: " and containing why. */
static void bad(const char *text, unsigned line, const char *why)
{
	struct auth_pw *db = NULL;
	char want[32];
	int rc = auth_pw_parse("f", text, strlen(text), &db, err, sizeof(err));

	snprintf(want, sizeof(want), "f:%u: ", line);
	CU_ASSERT_EQUAL(rc, ST_ERR_CONFIG);
	CU_ASSERT_PTR_NULL(db);
	if (rc != ST_ERR_CONFIG || strncmp(err, want, strlen(want)) != 0 || !strstr(err, why))
		fprintf(stderr, "\n  [%s]: rc %d err [%s], wanted [%s%s]\n", text, rc, err, want,
		        why);
}

static void test_malformed(void)
{
	static const char hash[] =
	        "$BRaNuDr1r/6hd5zls49ANmwb+TS/kNOL+pJlGoCf2JR7m24+wRxZeA0GzLhYX2+"
	        "bv+p0tVlTEBvJfa4BGmJcbg==";
	char line[512];

	bad("alice\n", 1, "expected user:hash");
	bad("#c\n\nalice:\n", 3, "does not start with $6$ or $7$");
	bad(":$6$AAAA$x\n", 1, "empty or overlong user name");
	bad("a:plain\n", 1, "does not start");
	bad("a:$5$AAAA$BBBB\n", 1, "does not start");
	bad("a:$7$$3JlrRG92RJV5by42$x\n", 1, "bad iteration count");
	bad("a:$7$0$3JlrRG92RJV5by42$x\n", 1, "bad iteration count");
	bad("a:$7$1x$3JlrRG92RJV5by42$x\n", 1, "bad iteration count");
	bad("a:$7$99999999999999999999$3JlrRG92RJV5by42$x\n", 1, "bad iteration count");
	bad("a:$7$101\n", 1, "bad salt");
	bad("a:$7$101$3Jlr*G92RJV5by42$x\n", 1, "bad salt");
	bad("a:$7$101$3JlrRG92RJV5by4$x\n", 1, "bad salt");
	bad("a:$7$101$3JlrRG92RJV5by42\n", 1, "bad hash");
	bad("a:$7$101$3JlrRG92RJV5by42$AAAA\n", 1, "bad hash"); /* 3 bytes, not 64 */
	snprintf(line, sizeof(line), "a:$7$101$3JlrRG92RJV5by42%s$extra\n", hash);
	bad(line, 1, "bad hash");
	snprintf(line, sizeof(line), "a:$7$101$3JlrRG92RJV5by42%s:x\n", hash);
	bad(line, 1, "more than one ':'");
	snprintf(line, sizeof(line), "a:$7$101$3JlrRG92RJV5by42%s\na:$6$3JlrRG92RJV5by42%s\n", hash,
	         hash);
	{
		struct auth_pw *db = NULL;

		CU_ASSERT_EQUAL(auth_pw_parse("f", line, strlen(line), &db, err, sizeof(err)),
		                ST_ERR_CONFIG);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "appears twice"));
	}
	CU_ASSERT_EQUAL(
	        auth_pw_parse("f", "a:\0b\n", 5, &(struct auth_pw *){NULL}, err, sizeof(err)),
	        ST_ERR_CONFIG);
	/* Blanks around the name and the hash are trimmed, as Mosquitto does. */
	snprintf(line, sizeof(line), "  alice :  $7$101$3JlrRG92RJV5by42%s  \n", hash);
	{
		struct auth_pw *db = NULL;

		CU_ASSERT_EQUAL_FATAL(auth_pw_parse("f", line, strlen(line), &db, err, sizeof(err)),
		                      ST_OK);
		CU_ASSERT_TRUE(check(db, "alice", "secret"));
		auth_pw_free(db);
	}
}

static void test_b64(void)
{
	uint8_t in[70], out[70];
	char enc[100];

	for (size_t n = 1; n < sizeof(in); n++) {
		for (size_t i = 0; i < n; i++)
			in[i] = (uint8_t)tu_rand(256);
		CU_ASSERT_EQUAL(b64_encode(in, n, enc), (n + 2) / 3 * 4);
		CU_ASSERT_EQUAL(b64_decode(enc, strlen(enc), out, sizeof(out)), (long)n);
		CU_ASSERT_EQUAL(memcmp(in, out, n), 0);
		CU_ASSERT_EQUAL(b64_decode(enc, strlen(enc), out, n - 1), -1);
	}
	CU_ASSERT_EQUAL(b64_decode("", 0, out, 10), -1);
	CU_ASSERT_EQUAL(b64_decode("AAA", 3, out, 10), -1);
	CU_ASSERT_EQUAL(b64_decode("A=AA", 4, out, 10), -1);
	CU_ASSERT_EQUAL(b64_decode("AA=A", 4, out, 10), -1);
	CU_ASSERT_EQUAL(b64_decode("AA==AAAA", 8, out, 10), -1);
	CU_ASSERT_EQUAL(b64_decode("AA==", 4, out, 10), 1);
	CU_ASSERT_EQUAL(b64_decode("A-AA", 4, out, 10), -1);
}

static void test_encode_round_trip(void)
{
	char enc[AUTH_PW_ENCODED_MAX], text[AUTH_PW_ENCODED_MAX + 16];
	struct auth_pw *db = NULL;

	CU_ASSERT_EQUAL(
	        auth_pw_encode(AUTH_PW_SHA512_PBKDF2, 0, (const uint8_t *)"x", 1, enc, sizeof(enc)),
	        ST_ERR_LIMIT);
	CU_ASSERT_EQUAL(auth_pw_encode(AUTH_PW_SHA512, 0, (const uint8_t *)"x", 1, enc, 10),
	                ST_ERR_LIMIT);
	for (int k = 0; k < 3; k++) {
		enum auth_pw_kind kind = k == 1 ? AUTH_PW_SHA512 : AUTH_PW_SHA512_PBKDF2;

		CU_ASSERT_EQUAL_FATAL(auth_pw_encode(kind, k == 2 ? 7 : AUTH_PW_ITERATIONS,
		                                     (const uint8_t *)"p\0w", 3, enc, sizeof(enc)),
		                      ST_OK);
		CU_ASSERT_EQUAL(strncmp(enc, k == 1 ? "$6$" : k == 2 ? "$7$7$" : "$7$101$", 3), 0);
		snprintf(text, sizeof(text), "u:%s\n", enc);
		CU_ASSERT_EQUAL_FATAL(auth_pw_parse("f", text, strlen(text), &db, err, sizeof(err)),
		                      ST_OK);
		CU_ASSERT_TRUE(
		        auth_pw_check(db, (const uint8_t *)"u", 1, (const uint8_t *)"p\0w", 3));
		CU_ASSERT_FALSE(
		        auth_pw_check(db, (const uint8_t *)"u", 1, (const uint8_t *)"p", 1));
		auth_pw_free(db);
	}
}

static void test_connect_rules(void)
{
	struct auth_pw *db = NULL;
	struct auth_domain d = {0};
	const uint8_t *a = (const uint8_t *)"alice", *s = (const uint8_t *)"secret";

	CU_ASSERT_EQUAL(auth_connect(&d, NULL, 0, NULL, 0, false), AUTH_NOT_AUTHORIZED);
	CU_ASSERT_EQUAL(auth_connect(&d, a, 5, s, 6, true), AUTH_NOT_AUTHORIZED);
	d.allow_anonymous = true;
	CU_ASSERT_EQUAL(auth_connect(&d, NULL, 0, NULL, 0, false), AUTH_ACCEPT);
	CU_ASSERT_EQUAL(auth_connect(&d, a, 5, s, 6, true), AUTH_ACCEPT);
	CU_ASSERT_EQUAL_FATAL(auth_pw_parse("f", vectors, strlen(vectors), &db, err, sizeof(err)),
	                      ST_OK);
	d.pw = db;
	CU_ASSERT_EQUAL(auth_connect(&d, NULL, 0, s, 6, true), AUTH_ACCEPT);
	CU_ASSERT_EQUAL(auth_connect(&d, a, 5, s, 6, true), AUTH_ACCEPT);
	CU_ASSERT_EQUAL(auth_connect(&d, a, 5, s, 5, true), AUTH_BAD_CREDENTIALS);
	CU_ASSERT_EQUAL(auth_connect(&d, a, 5, NULL, 0, false), AUTH_BAD_CREDENTIALS);
	CU_ASSERT_EQUAL(auth_connect(&d, a, 4, s, 6, true), AUTH_BAD_CREDENTIALS);
	d.allow_anonymous = false;
	CU_ASSERT_EQUAL(auth_connect(&d, NULL, 0, s, 6, true), AUTH_NOT_AUTHORIZED);
	auth_pw_free(db);
}

/* The entry tags a reload compares (auth.h): equal for the same line, different for another
 * salt or hash, 0 for no file or no such user. */
static void test_pw_tags(void)
{
	struct auth_pw *db = NULL, *again = NULL, *other = NULL;
	struct auth_domain d = {0}, d2 = {0}, d3 = {0};
	const uint8_t *a = (const uint8_t *)"alice", *b = (const uint8_t *)"bob";
	char enc[AUTH_PW_ENCODED_MAX], text[512];

	CU_ASSERT_EQUAL(auth_pw_tag(&d, a, 5), 0);
	CU_ASSERT_EQUAL_FATAL(auth_pw_parse("f", vectors, strlen(vectors), &db, err, sizeof(err)),
	                      ST_OK);
	CU_ASSERT_EQUAL_FATAL(
	        auth_pw_parse("g", vectors, strlen(vectors), &again, err, sizeof(err)), ST_OK);
	d.pw = db;
	d2.pw = again;
	CU_ASSERT_NOT_EQUAL(auth_pw_tag(&d, a, 5), 0);
	CU_ASSERT_NOT_EQUAL(auth_pw_tag(&d, b, 3), 0);
	CU_ASSERT_NOT_EQUAL(auth_pw_tag(&d, a, 5), auth_pw_tag(&d, b, 3));
	CU_ASSERT_EQUAL(auth_pw_tag(&d, a, 5), auth_pw_tag(&d2, a, 5));
	CU_ASSERT_EQUAL(auth_pw_tag(&d, b, 3), auth_pw_tag(&d2, b, 3));
	CU_ASSERT_EQUAL(auth_pw_tag(&d, (const uint8_t *)"carol", 5), 0);
	CU_ASSERT_EQUAL(auth_pw_tag(&d, a, 4), 0);
	/* alice with the same password hashed again (a fresh salt): another tag. */
	CU_ASSERT_EQUAL_FATAL(auth_pw_encode(AUTH_PW_SHA512_PBKDF2, AUTH_PW_ITERATIONS,
	                                     (const uint8_t *)"secret", 6, enc, sizeof(enc)),
	                      ST_OK);
	snprintf(text, sizeof(text), "alice:%s\n", enc);
	CU_ASSERT_EQUAL_FATAL(auth_pw_parse("h", text, strlen(text), &other, err, sizeof(err)),
	                      ST_OK);
	d3.pw = other;
	CU_ASSERT_NOT_EQUAL(auth_pw_tag(&d3, a, 5), 0);
	CU_ASSERT_NOT_EQUAL(auth_pw_tag(&d3, a, 5), auth_pw_tag(&d, a, 5));
	CU_ASSERT_EQUAL(auth_pw_tag(&d3, b, 3), 0);
	auth_pw_free(db);
	auth_pw_free(again);
	auth_pw_free(other);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"mosquitto_passwd vectors", test_mosquitto_vectors},
	        {"malformed lines", test_malformed},
	        {"base64", test_b64},
	        {"encode round trip", test_encode_round_trip},
	        {"CONNECT rules", test_connect_rules},
	        {"entry tags", test_pw_tags},
	        {NULL, NULL},
	};

	srand(9);
	tu_add_suite("passwd", tests);
	return tu_run_registry();
}
