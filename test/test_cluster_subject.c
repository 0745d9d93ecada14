/*
 * Unit tests of cluster/subject.c: examples of every rule, refused subjects, round trips and
 * injectivity on random topics holding every byte a topic may hold, and wildcard equivalence
 * against a model of NATS's subject matching (nats-server's rules: tokens split on '.', '*'
 * one token, '>' one or more tokens and only last): for random filters and topics, MQTT's
 * st_topic_matches agrees with the model on the mapped subjects, both ways.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/subject.h"
#include "starling/topic.h"
#include "testutil.h"

static struct cluster_prefix pfx;

static long topic_subject(const char *topic, char *buf, size_t cap)
{
	return cluster_subject_of_topic(&pfx, (const uint8_t *)topic, strlen(topic), buf, cap);
}

/* The subject of a topic, or the error code as text. */
static const char *subj(const char *topic)
{
	static char buf[CLUSTER_SUBJECT_MAX + 1];
	long n = topic_subject(topic, buf, sizeof(buf));

	if (n < 0)
		snprintf(buf, sizeof(buf), "%ld", n);
	return buf;
}

/* "SUBJECT" or "SUBJECT|PARENT" for a filter, or the error code. */
static const char *fsubj(const char *filter)
{
	static char buf[2 * CLUSTER_SUBJECT_MAX + 2];
	size_t parent;
	long n = cluster_subjects_of_filter(&pfx, (const uint8_t *)filter, strlen(filter), buf,
	                                    CLUSTER_SUBJECT_MAX + 1, &parent);

	if (n < 0) {
		snprintf(buf, sizeof(buf), "%ld", n);
		return buf;
	}
	if (parent) {
		buf[n] = '|';
		memcpy(buf + n + 1, buf, parent);
		buf[n + 1 + parent] = '\0';
	}
	return buf;
}

/* The topic of a subject, or the error code. */
static const char *topic_of(const char *subject)
{
	static char buf[65536 + 1];
	long n = cluster_topic_of_subject(&pfx, subject, strlen(subject), (uint8_t *)buf,
	                                  sizeof(buf) - 1);

	if (n < 0)
		snprintf(buf, sizeof(buf), "%ld", n);
	else
		buf[n] = '\0';
	return buf;
}

static void test_names(void)
{
	struct cluster_prefix p;

	CU_ASSERT_TRUE(cluster_name_is_valid("starling", 8));
	CU_ASSERT_TRUE(cluster_name_is_valid("acme.prod-1", 11));
	CU_ASSERT_TRUE(cluster_name_is_valid("a_b", 3));
	CU_ASSERT_FALSE(cluster_name_is_valid("", 0));
	CU_ASSERT_FALSE(cluster_name_is_valid(".a", 2));
	CU_ASSERT_FALSE(cluster_name_is_valid("a.", 2));
	CU_ASSERT_FALSE(cluster_name_is_valid("a..b", 4));
	CU_ASSERT_FALSE(cluster_name_is_valid("a*", 2));
	CU_ASSERT_FALSE(cluster_name_is_valid("a b", 3));
	CU_ASSERT_FALSE(cluster_name_is_valid("$SYS", 4));
	CU_ASSERT_FALSE(cluster_name_is_valid("_INBOX", 6));
	CU_ASSERT_FALSE(cluster_name_is_valid("a>", 2));
	CU_ASSERT_FALSE(cluster_name_is_valid("a=b", 3));
	char long_name[CLUSTER_NAME_MAX + 1];
	memset(long_name, 'x', sizeof(long_name));
	CU_ASSERT_TRUE(cluster_name_is_valid(long_name, CLUSTER_NAME_MAX));
	CU_ASSERT_FALSE(cluster_name_is_valid(long_name, CLUSTER_NAME_MAX + 1));
	CU_ASSERT_EQUAL(cluster_prefix_init(&p, "a b", 3), CLUSTER_MAP_INVALID);
	CU_ASSERT_EQUAL(cluster_prefix_init(&p, "acme.prod", 9), 0);
	CU_ASSERT_STRING_EQUAL(p.str, "acme.prod.");
	CU_ASSERT_EQUAL(p.len, 10);
}

static void test_topic_examples(void)
{
	CU_ASSERT_STRING_EQUAL(subj("a/b"), "starling.m.a.b");
	CU_ASSERT_STRING_EQUAL(subj("sensors/Temp_1/x-y"), "starling.m.sensors.Temp_1.x-y");
	CU_ASSERT_STRING_EQUAL(subj("/"), "starling.m.=.=");
	CU_ASSERT_STRING_EQUAL(subj("/a//"), "starling.m.=.a.=.=");
	CU_ASSERT_STRING_EQUAL(subj("host.example.com/t"), "starling.m.host=2Eexample=2Ecom.t");
	CU_ASSERT_STRING_EQUAL(subj("*/>/a b/\t"), "starling.m.=2A.=3E.a=20b.=09");
	CU_ASSERT_STRING_EQUAL(subj("="), "starling.m.=3D");
	CU_ASSERT_STRING_EQUAL(subj("=2E"), "starling.m.=3D2E");
	CU_ASSERT_STRING_EQUAL(subj("caf\xc3\xa9"), "starling.m.caf=C3=A9");
	CU_ASSERT_STRING_EQUAL(subj("$aws/things"), "starling.d.=24aws.things");
	CU_ASSERT_STRING_EQUAL(subj("a/$b"), "starling.m.a.=24b");
	CU_ASSERT_STRING_EQUAL(subj("$"), "starling.d.=24");
	CU_ASSERT_STRING_EQUAL(subj("$SYSX/a"), "starling.d.=24SYSX.a");
	/* $SYS stays per node; wildcards and empty names are no topics. */
	CU_ASSERT_STRING_EQUAL(subj("$SYS"), "-1");
	CU_ASSERT_STRING_EQUAL(subj("$SYS/broker/uptime"), "-1");
	CU_ASSERT_STRING_EQUAL(subj(""), "-3");
	CU_ASSERT_STRING_EQUAL(subj("a/+"), "-3");
	CU_ASSERT_STRING_EQUAL(subj("#"), "-3");
}

static void test_filter_examples(void)
{
	CU_ASSERT_STRING_EQUAL(fsubj("a/b"), "starling.m.a.b");
	CU_ASSERT_STRING_EQUAL(fsubj("#"), "starling.m.>");
	CU_ASSERT_STRING_EQUAL(fsubj("+"), "starling.m.*");
	CU_ASSERT_STRING_EQUAL(fsubj("a/#"), "starling.m.a.>|starling.m.a");
	CU_ASSERT_STRING_EQUAL(fsubj("+/#"), "starling.m.*.>|starling.m.*");
	CU_ASSERT_STRING_EQUAL(fsubj("a/+/c"), "starling.m.a.*.c");
	CU_ASSERT_STRING_EQUAL(fsubj("/#"), "starling.m.=.>|starling.m.=");
	CU_ASSERT_STRING_EQUAL(fsubj("$x/#"), "starling.d.=24x.>|starling.d.=24x");
	CU_ASSERT_STRING_EQUAL(fsubj("$x/+"), "starling.d.=24x.*");
	CU_ASSERT_STRING_EQUAL(fsubj("a*/>"), "starling.m.a=2A.=3E");
	CU_ASSERT_STRING_EQUAL(fsubj("$SYS/#"), "-1");
	CU_ASSERT_STRING_EQUAL(fsubj("$SYS"), "-1");
	CU_ASSERT_STRING_EQUAL(fsubj("a/#/b"), "-3");
	CU_ASSERT_STRING_EQUAL(fsubj("a+"), "-3");
	CU_ASSERT_STRING_EQUAL(fsubj(""), "-3");
}

static void test_share(void)
{
	char q[CLUSTER_SUBJECT_MAX + 1], s[CLUSTER_SUBJECT_MAX + 1];
	size_t qlen, parent;
	long n;

#define SHARE(str)                                                                                 \
	cluster_subjects_of_share(&pfx, (const uint8_t *)(str), strlen(str), q, sizeof(q), &qlen,  \
	                          s, sizeof(s), &parent)
	n = SHARE("$share/g/a/#");
	CU_ASSERT_EQUAL_FATAL(n, 14);
	CU_ASSERT_STRING_EQUAL(s, "starling.m.a.>");
	CU_ASSERT_EQUAL(parent, 12);
	CU_ASSERT_STRING_EQUAL(q, "g.m.a.>");
	CU_ASSERT_EQUAL(qlen, 7);
	n = SHARE("$share/g.x/+/b");
	CU_ASSERT_TRUE(n > 0);
	CU_ASSERT_STRING_EQUAL(s, "starling.m.*.b");
	CU_ASSERT_EQUAL(parent, 0);
	CU_ASSERT_STRING_EQUAL(q, "g=2Ex.m.*.b");
	n = SHARE("$share/g/$x/y");
	CU_ASSERT_STRING_EQUAL(q, "g.d.=24x.y");
	CU_ASSERT_EQUAL(SHARE("$share/g/$SYS/#"), CLUSTER_MAP_LOCAL);
	CU_ASSERT_EQUAL(SHARE("$share//a"), CLUSTER_MAP_INVALID);
	CU_ASSERT_EQUAL(SHARE("$share/g"), CLUSTER_MAP_INVALID);
	CU_ASSERT_EQUAL(SHARE("$share/g/"), CLUSTER_MAP_INVALID);
	CU_ASSERT_EQUAL(SHARE("$share/+/a"), CLUSTER_MAP_INVALID);
	CU_ASSERT_EQUAL(SHARE("$share/g#/a"), CLUSTER_MAP_INVALID);
	CU_ASSERT_EQUAL(SHARE("$share/g/a/#/b"), CLUSTER_MAP_INVALID);
	CU_ASSERT_EQUAL(SHARE("$shared/g/a"), CLUSTER_MAP_INVALID);
	CU_ASSERT_EQUAL(SHARE("a/b"), CLUSTER_MAP_INVALID);
	/* A queue name that does not fit. */
	CU_ASSERT_EQUAL(cluster_subjects_of_share(&pfx, (const uint8_t *)"$share/group/a", 14, q, 5,
	                                          &qlen, s, sizeof(s), &parent),
	                CLUSTER_MAP_TOO_LONG);
	CU_ASSERT_EQUAL(qlen, 0);
#undef SHARE
}

static void test_reverse(void)
{
	CU_ASSERT_STRING_EQUAL(topic_of("starling.m.a.b"), "a/b");
	CU_ASSERT_STRING_EQUAL(topic_of("starling.m.=.a.="), "/a/");
	CU_ASSERT_STRING_EQUAL(topic_of("starling.d.=24aws.x=2Ey"), "$aws/x.y");
	CU_ASSERT_STRING_EQUAL(topic_of("starling.m.caf=C3=A9"), "caf\xc3\xa9");
	static const char *const bad[] = {
	        "starling",            /* no kind */
	        "starling.m",          /* no level */
	        "starling.m.",         /* an empty token */
	        "starling.m..a",       /* an empty token */
	        "starling.m.a.",       /* an empty token */
	        "starlinG.m.a",        /* another prefix */
	        "other.m.a",           /* another prefix */
	        "starling.x.a",        /* unknown kind */
	        "starling.mm.a",       /* unknown kind */
	        "starling.m.a=2e",     /* lower-case hex */
	        "starling.m.=41",      /* 'A' needs no escape */
	        "starling.m.=5F",      /* '_' needs no escape */
	        "starling.m.=2",       /* truncated escape */
	        "starling.m.a=",       /* truncated escape */
	        "starling.m.==",       /* not the empty level */
	        "starling.m.=G0",      /* no hex */
	        "starling.m.a b",      /* whitespace */
	        "starling.m.*",        /* a wildcard is no topic */
	        "starling.m.>",        /* a wildcard is no topic */
	        "starling.m.a$",       /* '$' must be escaped */
	        "starling.m.=24x",     /* a '$' topic under "m" */
	        "starling.d.a",        /* a plain topic under "d" */
	        "starling.d.=24SYS.x", /* $SYS stays per node */
	        "starling.d.=24SYS",   /* $SYS stays per node */
	        "starling.m.=2B",      /* '+' is no topic byte */
	        "starling.m.a=23",     /* '#' is no topic byte */
	        "starling.m.=2F",      /* '/' is no level byte: "a/b" is two tokens */
	        "starling.m.=00",      /* U+0000 */
	        "starling.m.=FF",      /* not UTF-8 */
	        "starling.m.=C3",      /* truncated UTF-8 */
	        "starling.m.=",        /* the empty topic */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (strcmp(topic_of(bad[i]), "-3") != 0) {
			printf("\n%s -> %s ", bad[i], topic_of(bad[i]));
			CU_FAIL("a subject that should be refused");
		}
	}
	/* The topic does not fit the caller's buffer. */
	uint8_t small[3];
	CU_ASSERT_EQUAL(cluster_topic_of_subject(&pfx, "starling.m.abcd", 15, small, 3),
	                CLUSTER_MAP_TOO_LONG);
	CU_ASSERT_EQUAL(cluster_topic_of_subject(&pfx, "starling.m.ab.c", 15, small, 3),
	                CLUSTER_MAP_TOO_LONG);
	CU_ASSERT_EQUAL(cluster_topic_of_subject(&pfx, "starling.m.ab.c", 15, small, 2),
	                CLUSTER_MAP_TOO_LONG);
}

static void test_lengths(void)
{
	static char topic[65536], buf[CLUSTER_SUBJECT_MAX + 16];
	size_t base = strlen("starling.m.");
	long n;

	/* The longest subject: exactly CLUSTER_SUBJECT_MAX bytes. */
	memset(topic, 'a', sizeof(topic));
	n = cluster_subject_of_topic(&pfx, (uint8_t *)topic, CLUSTER_SUBJECT_MAX - base, buf,
	                             sizeof(buf));
	CU_ASSERT_EQUAL(n, CLUSTER_SUBJECT_MAX);
	CU_ASSERT_EQUAL(strlen(buf), CLUSTER_SUBJECT_MAX);
	CU_ASSERT_EQUAL(cluster_subject_of_topic(&pfx, (uint8_t *)topic,
	                                         CLUSTER_SUBJECT_MAX - base + 1, buf, sizeof(buf)),
	                CLUSTER_MAP_TOO_LONG);
	CU_ASSERT_EQUAL(cluster_subject_of_topic(&pfx, (uint8_t *)topic, 65535, buf, sizeof(buf)),
	                CLUSTER_MAP_TOO_LONG);
	/* A subject of escapes: a third as many topic bytes fit. */
	memset(topic, '.', sizeof(topic));
	CU_ASSERT_EQUAL(cluster_subject_of_topic(&pfx, (uint8_t *)topic,
	                                         (CLUSTER_SUBJECT_MAX - base) / 3, buf,
	                                         sizeof(buf)),
	                (long)(base + 3 * ((CLUSTER_SUBJECT_MAX - base) / 3)));
	CU_ASSERT_EQUAL(cluster_subject_of_topic(&pfx, (uint8_t *)topic,
	                                         (CLUSTER_SUBJECT_MAX - base) / 3 + 1, buf,
	                                         sizeof(buf)),
	                CLUSTER_MAP_TOO_LONG);
	/* The caller's capacity counts the NUL. */
	CU_ASSERT_EQUAL(cluster_subject_of_topic(&pfx, (const uint8_t *)"ab", 2, buf, 14), 13);
	CU_ASSERT_EQUAL(cluster_subject_of_topic(&pfx, (const uint8_t *)"ab", 2, buf, 13),
	                CLUSTER_MAP_TOO_LONG);
	CU_ASSERT_EQUAL(cluster_subject_of_topic(&pfx, (const uint8_t *)"ab", 2, buf, 0),
	                CLUSTER_MAP_TOO_LONG);
	/* A subject over the bound is refused whatever the buffer. */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "starling.m.", base);
	CU_ASSERT_EQUAL(cluster_topic_of_subject(&pfx, buf, CLUSTER_SUBJECT_MAX + 1,
	                                         (uint8_t *)topic, sizeof(topic)),
	                CLUSTER_MAP_INVALID);
	CU_ASSERT_EQUAL(cluster_topic_of_subject(&pfx, buf, CLUSTER_SUBJECT_MAX, (uint8_t *)topic,
	                                         sizeof(topic)),
	                (long)(CLUSTER_SUBJECT_MAX - base));
}

/* --- random topics with every byte a topic may hold ------------------------------------- */

/* Appends one random character as UTF-8: every ASCII byte but NUL, '+', '#', '/', and some
 * multi-byte characters. Returns bytes written. */
static size_t random_char(uint8_t *s)
{
	static const char *const multi[] = {"\xc2\x80", "\xc3\xa9", "\xe2\x82\xac", "\xef\xbf\xbf",
	                                    "\xf0\x9f\x98\x80"};
	unsigned r = tu_rand(10);
	uint8_t c;

	if (r == 0) {
		const char *m = multi[tu_rand(5)];

		memcpy(s, m, strlen(m));
		return strlen(m);
	}
	do
		c = (uint8_t)(1 + tu_rand(127));
	while (c == '+' || c == '#' || c == '/');
	*s = c;
	return 1;
}

/* A random valid topic name into s (room for 256 bytes); returns its length. */
static size_t random_topic(uint8_t *s)
{
	unsigned levels = 1 + tu_rand(5);
	size_t len = 0;

	if (tu_rand(4) == 0)
		s[len++] = '$';
	if (tu_rand(20) == 0) {
		memcpy(s, "$SYS", 4);
		len = 4;
	}
	for (unsigned i = 0; i < levels; i++) {
		unsigned chars = tu_rand(6);

		for (unsigned k = 0; k < chars; k++)
			len += random_char(s + len);
		if (i + 1 < levels)
			s[len++] = '/';
	}
	if (len == 0)
		s[len++] = 'a';
	return len;
}

/* What NATS accepts as a literal subject, and more: only the bytes our tokens may hold. */
static bool subject_is_clean(const char *s, size_t len)
{
	size_t tok = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (tok == 0)
				return false;
			tok = 0;
			continue;
		}
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '='))
			return false;
		tok++;
	}
	return true;
}

struct pair {
	char *subject;
	uint8_t topic[256];
	size_t topic_len;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;

	return strcmp(x->subject, y->subject);
}

static void test_round_trip_and_injective(void)
{
	enum { N = 30000 };
	struct pair *pairs = calloc(N, sizeof(*pairs));
	char buf[CLUSTER_SUBJECT_MAX + 1];
	uint8_t back[1024];
	unsigned mapped = 0, local = 0, collisions = 0;

	srand(14);
	for (unsigned i = 0; i < N; i++) {
		struct pair *p = &pairs[mapped];
		long n, m;

		p->topic_len = random_topic(p->topic);
		n = cluster_subject_of_topic(&pfx, p->topic, p->topic_len, buf, sizeof(buf));
		if (n == CLUSTER_MAP_LOCAL) {
			CU_ASSERT_TRUE(p->topic_len >= 4 && memcmp(p->topic, "$SYS", 4) == 0);
			local++;
			continue;
		}
		CU_ASSERT_FATAL(n > 0);
		CU_ASSERT_EQUAL((size_t)n, strlen(buf));
		CU_ASSERT_TRUE(subject_is_clean(buf, (size_t)n));
		m = cluster_topic_of_subject(&pfx, buf, (size_t)n, back, sizeof(back));
		if (m != (long)p->topic_len || memcmp(back, p->topic, p->topic_len) != 0) {
			printf("\nround trip failed: %s -> %ld ", buf, m);
			CU_FAIL("round trip");
		}
		p->subject = strdup(buf);
		mapped++;
	}
	/* Sorted by subject, equal subjects must come from equal topics. */
	qsort(pairs, mapped, sizeof(*pairs), pair_cmp);
	for (unsigned i = 1; i < mapped; i++) {
		if (strcmp(pairs[i].subject, pairs[i - 1].subject) != 0)
			continue;
		collisions++; /* the same topic drawn twice */
		if (pairs[i].topic_len != pairs[i - 1].topic_len ||
		    memcmp(pairs[i].topic, pairs[i - 1].topic, pairs[i].topic_len) != 0)
			CU_FAIL("two topics with one subject");
	}
	printf("(%u mapped, %u $SYS, %u repeated) ", mapped, local, collisions);
	CU_ASSERT_TRUE(local > 0);
	CU_ASSERT_TRUE(collisions > 0); /* short topics repeat: the check did compare */
	for (unsigned i = 0; i < mapped; i++)
		free(pairs[i].subject);
	free(pairs);
}

/*
 * The other way: a random subject that the reverse mapping accepts must be the one the forward
 * mapping writes for that topic, so that no two accepted subjects give one topic.
 */
static void test_reverse_canonical(void)
{
	static const char *const pieces[] = {"a",      "=",   "=2F", "=2E", "=41",    "=24",
	                                     "=C3=A9", "=3D", "_",   "-",   "=24SYS", "A",
	                                     "=C3",    "=a9", "=20", "=2A"};
	char s[256], again[256];
	uint8_t topic[256];
	unsigned accepted = 0;

	srand(4242);
	for (int i = 0; i < 200000; i++) {
		size_t len = (size_t)sprintf(s, "starling.%c", tu_rand(2) ? 'm' : 'd');
		unsigned tokens = 1 + tu_rand(3);
		long n, m;

		for (unsigned t = 0; t < tokens; t++) {
			unsigned k = 1 + tu_rand(2);

			s[len++] = '.';
			for (unsigned j = 0; j < k; j++)
				len += (size_t)sprintf(s + len, "%s", pieces[tu_rand(16)]);
		}
		n = cluster_topic_of_subject(&pfx, s, len, topic, sizeof(topic));
		if (n < 0)
			continue;
		accepted++;
		m = cluster_subject_of_topic(&pfx, topic, (size_t)n, again, sizeof(again));
		if (m != (long)len || memcmp(again, s, len) != 0) {
			printf("\n%.*s -> %.*s -> %s ", (int)len, s, (int)n, topic, again);
			CU_FAIL("an accepted subject that is not the topic's own");
		}
	}
	printf("(%u accepted) ", accepted);
	CU_ASSERT_TRUE(accepted > 1000);
}

/* --- wildcard equivalence against a model of NATS matching ----------------------------- */

/* NATS: does literal subject s match subscription subject p? */
static bool nats_matches(const char *p, size_t plen, const char *s, size_t slen)
{
	size_t i = 0, j = 0;

	for (;;) {
		size_t pn = 0, sn = 0;

		while (i + pn < plen && p[i + pn] != '.')
			pn++;
		if (pn == 1 && p[i] == '>')
			return j < slen; /* one or more tokens left */
		if (j >= slen)
			return false;
		while (j + sn < slen && s[j + sn] != '.')
			sn++;
		if (!(pn == 1 && p[i] == '*') && (pn != sn || memcmp(p + i, s + j, pn) != 0))
			return false;
		i += pn;
		j += sn;
		if (i == plen || j == slen)
			return i == plen && j == slen;
		i++;
		j++;
	}
}

static void test_model_matcher(void)
{
	CU_ASSERT_TRUE(nats_matches("a.b", 3, "a.b", 3));
	CU_ASSERT_FALSE(nats_matches("a.b", 3, "a.bc", 4));
	CU_ASSERT_FALSE(nats_matches("a.b", 3, "a", 1));
	CU_ASSERT_TRUE(nats_matches("a.*", 3, "a.b", 3));
	CU_ASSERT_FALSE(nats_matches("a.*", 3, "a", 1));
	CU_ASSERT_FALSE(nats_matches("a.*", 3, "a.b.c", 5));
	CU_ASSERT_TRUE(nats_matches("a.>", 3, "a.b.c", 5));
	CU_ASSERT_FALSE(nats_matches("a.>", 3, "a", 1));
	CU_ASSERT_TRUE(nats_matches(">", 1, "a", 1));
	CU_ASSERT_TRUE(nats_matches("*.*", 3, "ab.c", 4));
	CU_ASSERT_FALSE(nats_matches("*.*", 3, "ab", 2));
}

/* A random topic or filter over levels chosen to collide, escape and hit the '$' rule. */
static void random_tf(char *s, bool filter)
{
	static const char *const lv[] = {"a", "b",   "",  "$a",   "$",   ".",   "*",       ">",
	                                 "=", "=2E", " ", "$SYS", "a.b", "=3D", "\xc3\xa9"};
	unsigned levels = 1 + tu_rand(4);
	size_t len = 0;

	for (unsigned i = 0; i < levels; i++) {
		unsigned r = tu_rand(10);

		if (filter && r < 3)
			s[len++] = '+';
		else if (filter && r == 3 && i + 1 == levels)
			s[len++] = '#';
		else
			len += (size_t)sprintf(s + len, "%s", lv[tu_rand(i == 0 ? 15 : 10)]);
		if (i + 1 < levels)
			s[len++] = '/';
	}
	if (len == 0)
		s[len++] = 'a';
	s[len] = '\0';
}

static void test_wildcard_equivalence(void)
{
	char filter[64], topic[64], fs[256], ts[256];
	unsigned checked = 0, matched = 0, local = 0;

	srand(1414);
	for (int i = 0; i < 400000; i++) {
		size_t flen, tlen, parent;
		long fn, tn;
		bool mqtt, nats;

		random_tf(filter, true);
		random_tf(topic, false);
		flen = strlen(filter);
		tlen = strlen(topic);
		mqtt = st_topic_matches((const uint8_t *)filter, flen, (const uint8_t *)topic,
		                        tlen);
		fn = cluster_subjects_of_filter(&pfx, (const uint8_t *)filter, flen, fs, sizeof(fs),
		                                &parent);
		tn = cluster_subject_of_topic(&pfx, (const uint8_t *)topic, tlen, ts, sizeof(ts));
		if (fn == CLUSTER_MAP_LOCAL || tn == CLUSTER_MAP_LOCAL) {
			/* $SYS on either side: neither is clustered; a $SYS topic is matched
			 * only by a $SYS filter in MQTT, which stays local as well. */
			if (mqtt && (fn != CLUSTER_MAP_LOCAL || tn != CLUSTER_MAP_LOCAL))
				CU_FAIL("a $SYS match crosses the cluster boundary");
			local++;
			continue;
		}
		CU_ASSERT_FATAL(fn > 0 && tn > 0);
		nats = nats_matches(fs, (size_t)fn, ts, (size_t)tn) ||
		       (parent && nats_matches(fs, parent, ts, (size_t)tn));
		if (mqtt != nats) {
			printf("\nfilter '%s' topic '%s': MQTT %d, NATS %d (%s | %.*s vs %s) ",
			       filter, topic, mqtt, nats, fs, (int)parent, fs, ts);
			CU_FAIL("MQTT and NATS matching differ");
		}
		checked++;
		matched += mqtt;
	}
	printf("(%u checked, %u matched, %u $SYS) ", checked, matched, local);
	CU_ASSERT_TRUE(matched > checked / 50);
	CU_ASSERT_TRUE(matched < checked - checked / 10);
}

/* Shared subscriptions: one queue name per (group, filter), different ones otherwise. */
static void test_share_queue_names_injective(void)
{
	enum { N = 3000 };
	static char names[N][160], shares[N][160];
	char s[256];
	size_t qlen, parent;

	srand(77);
	for (int i = 0; i < N; i++) {
		char filter[64], group[64];

		random_tf(filter, true);
		random_tf(group, false);
		if (strchr(group, '/'))
			*strchr(group, '/') = '\0';
		if (group[0] == '\0')
			strcpy(group, "g");
		snprintf(shares[i], sizeof(shares[i]), "$share/%s/%s", group, filter);
		if (cluster_subjects_of_share(&pfx, (const uint8_t *)shares[i], strlen(shares[i]),
		                              names[i], sizeof(names[i]), &qlen, s, sizeof(s),
		                              &parent) < 0)
			names[i][0] = shares[i][0] = '\0';
	}
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			if (names[i][0] && (strcmp(names[i], names[j]) == 0) !=
			                           (strcmp(shares[i], shares[j]) == 0)) {
				printf("\n%s / %s -> %s ", shares[i], shares[j], names[i]);
				CU_FAIL("queue names are not one per shared subscription");
			}
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"cluster names", test_names},
	        {"topic examples", test_topic_examples},
	        {"filter examples", test_filter_examples},
	        {"shared subscriptions", test_share},
	        {"reverse mapping refuses", test_reverse},
	        {"subject length bounds", test_lengths},
	        {"round trip and injectivity", test_round_trip_and_injective},
	        {"reverse mapping is canonical", test_reverse_canonical},
	        {"model matcher", test_model_matcher},
	        {"wildcard equivalence", test_wildcard_equivalence},
	        {"queue names", test_share_queue_names_injective},
	        {NULL, NULL},
	};

	if (cluster_prefix_init(&pfx, CLUSTER_NAME_DEFAULT, strlen(CLUSTER_NAME_DEFAULT)) != 0)
		return 1;
	tu_add_suite("cluster_subject", tests);
	return tu_run_registry();
}
