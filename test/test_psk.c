/*
 * Unit tests of auth/psk.c: Mosquitto's key decoding (leading "00" pairs kept, the rest as a
 * number), psk_file lines (comments, blanks, trimming, a second ':'), and the errors that name
 * the file and line.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/psk.h"
#include "starling/error.h"
#include "testutil.h"

static int hex(const char *s, uint8_t *out, size_t cap)
{
	return auth_psk_hex(s, strlen(s), out, cap);
}

static void test_hex(void)
{
	uint8_t k[AUTH_PSK_KEY_MAX];

	CU_ASSERT_EQUAL(hex("deadBEEF", k, sizeof(k)), 4);
	CU_ASSERT_EQUAL(memcmp(k, "\xde\xad\xbe\xef", 4), 0);
	CU_ASSERT_EQUAL(hex("0001", k, sizeof(k)), 2);
	CU_ASSERT_EQUAL(memcmp(k, "\x00\x01", 2), 0);
	CU_ASSERT_EQUAL(hex("abc", k, sizeof(k)), 2); /* BN: 0x0abc */
	CU_ASSERT_EQUAL(memcmp(k, "\x0a\xbc", 2), 0);
	CU_ASSERT_EQUAL(hex("0abc", k, sizeof(k)), 2);
	CU_ASSERT_EQUAL(memcmp(k, "\x0a\xbc", 2), 0);
	CU_ASSERT_EQUAL(hex("000", k, sizeof(k)), 1); /* one "00" pair, then zero: nothing */
	CU_ASSERT_EQUAL(k[0], 0);
	CU_ASSERT_EQUAL(hex("00000a", k, sizeof(k)), 3);
	CU_ASSERT_EQUAL(memcmp(k, "\x00\x00\x0a", 3), 0);
	CU_ASSERT_EQUAL(hex("0", k, sizeof(k)), -1); /* zero bytes of key */
	CU_ASSERT_EQUAL(hex("", k, sizeof(k)), -1);
	CU_ASSERT_EQUAL(hex("0x12", k, sizeof(k)), -1);
	CU_ASSERT_EQUAL(hex("12 34", k, sizeof(k)), -1);
	CU_ASSERT_EQUAL(hex("123456", k, 2), -1); /* does not fit */
	CU_ASSERT_EQUAL(hex("1234", k, 2), 2);
}

static char path[64];

static int load(const char *text, struct auth_psk **p, char *err, size_t errlen)
{
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/st-psk-%d", (int)getpid());
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	return auth_psk_load(path, p, err, errlen);
}

static void test_file(void)
{
	struct auth_psk *p = NULL;
	const struct auth_psk_entry *e;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(load("# keys\n\nalice:0102\n  bob  :  ff  \ncarol:abcd:extra\r\n", &p,
	                           err, sizeof(err)),
	                      ST_OK);
	CU_ASSERT_EQUAL(p->count, 3);
	e = auth_psk_find(p, "alice");
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->key_len, 2);
	e = auth_psk_find(p, "bob");
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->key[0], 0xff);
	e = auth_psk_find(p, "carol");
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->key_len, 2);
	CU_ASSERT_PTR_NULL(auth_psk_find(p, "dave"));
	CU_ASSERT_PTR_NULL(auth_psk_find(NULL, "alice"));
	auth_psk_free(p);
	unlink(path);
}

static void expect_bad(const char *text, const char *reason)
{
	struct auth_psk *p = NULL;
	char err[256];

	CU_ASSERT_EQUAL(load(text, &p, err, sizeof(err)), ST_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, reason));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	if (!strstr(err, reason))
		fprintf(stderr, "\n  err [%s], wanted [%s]\n", err, reason);
	unlink(path);
}

static void test_file_errors(void)
{
	char line[1200];

	expect_bad("a:01\nno colon here\n", ":2: expected identity:key");
	expect_bad("a:\n", ":1: empty key");
	expect_bad(":01\n", ":1: empty identity");
	expect_bad("a:0g\n", ":1: key is not hexadecimal");
	expect_bad("a:01\na:02\n", "identity \"a\" given twice");
	memset(line, 'a', 129);
	strcpy(line + 129, ":01\n");
	expect_bad(line, ":1: identity longer than 128 bytes");
	strcpy(line, "a:");
	memset(line + 2, 'f', 1026);
	strcpy(line + 1028, "\n");
	expect_bad(line, ":1: key longer than 512 bytes");
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"hex keys as Mosquitto decodes them", test_hex},
	        {"psk_file", test_file},
	        {"psk_file errors", test_file_errors},
	        {NULL, NULL},
	};

	tu_add_suite("psk", tests);
	return tu_run_registry();
}
