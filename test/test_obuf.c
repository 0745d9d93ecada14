/*
 * Tests of the output buffer (src/broker/obuf.c) and of the refcounted messages its splices hold
 * (src/index/msg.c).
 *
 * Every test builds the byte string a send should carry alongside the obuf (struct expect),
 * then checks obuf_iov() at every skip from 0 to total: the concatenated iovecs must be
 * exactly the expected bytes from skip on, never more entries than obuf_iov_count(), and no
 * empty entry (it would waste one of the few iovecs a sendmsg carries). With a short iovec array
 * (every iov_max from 0 to what the whole needs), the result must be the first iov_max entries of
 * the full answer: a prefix, so a send resumes correctly, and no shorter than the array allows. The
 * arrays are malloc'd to their exact size so ASan sees a write past iov_max.
 *
 * Splices must reference the message's bytes (the iovec points into the message: zero copy)
 * and hold one reference each until reset or release, checked through m->refs.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "starling/error.h"
#include "index/msg.h"
#include "broker/obuf.h"
#include "testutil.h"

#define EXPECT_MAX 65536

/* What the obuf should send. */
struct expect {
	uint8_t b[EXPECT_MAX]; /* the bytes */
	size_t len;            /* bytes used */
};

static void exp_add(struct expect *e, const void *p, size_t n)
{
	CU_ASSERT_FATAL(e->len + n <= EXPECT_MAX);
	memcpy(e->b + e->len, p, n);
	e->len += n;
}

/* A message whose payload is n bytes of a pattern that depends on seed. */
static struct msg *msg_pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n ? n : 1);
	struct st_bytes topic = {(const uint8_t *)"big/payload", 11};
	struct st_bytes none = {NULL, 0};
	struct msg *m;

	if (!p)
		abort();
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed * 31 + (i >> 8));
	m = msg_new(topic, none, (struct st_bytes){p, (uint32_t)n}, 1, false);
	free(p);
	if (!m)
		abort();
	return m;
}

/* Splices m's payload [off, off + n) into ob and into e. */
static void splice(struct obuf *ob, struct expect *e, struct msg *m, uint32_t off, uint32_t n)
{
	CU_ASSERT_EQUAL(obuf_splice(ob, m, msg_payload(m) + off, n), ST_OK);
	exp_add(e, msg_payload(m) + off, n);
}

static void append(struct obuf *ob, struct expect *e, const void *p, size_t n)
{
	CU_ASSERT_EQUAL(obuf_append(ob, p, n), ST_OK);
	exp_add(e, p, n);
}

/* Concatenates n iovecs into out (room for EXPECT_MAX); returns the bytes, counts empties. */
static size_t iov_join(const struct iovec *iov, unsigned n, uint8_t *out, unsigned *empty)
{
	size_t len = 0;

	for (unsigned i = 0; i < n; i++) {
		if (iov[i].iov_len == 0)
			(*empty)++;
		if (len + iov[i].iov_len > EXPECT_MAX)
			return EXPECT_MAX + 1;
		memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	return len;
}

/* obuf_iov at every skip with room for everything: exactly e's bytes from skip on. */
static void check_iov_all(const struct obuf *ob, const struct expect *e)
{
	unsigned cnt = obuf_iov_count(ob), bad = 0, empty = 0;
	struct iovec *iov = malloc(cnt * sizeof(*iov));
	uint8_t *got = malloc(EXPECT_MAX + 1);

	CU_ASSERT_PTR_NOT_NULL_FATAL(iov);
	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	CU_ASSERT_EQUAL(ob->total, e->len);
	for (size_t skip = 0; skip <= e->len; skip++) {
		unsigned n = obuf_iov(ob, skip, iov, cnt);
		size_t len = iov_join(iov, n, got, &empty);

		if (n > cnt || len != e->len - skip || memcmp(got, e->b + skip, len) != 0)
			bad++;
		if (skip == e->len && n != 0)
			bad++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(empty, 0);
	free(iov);
	free(got);
}

/* With room for k < needed entries: the first k entries of the full answer, for every skip. */
static void check_iov_short(const struct obuf *ob, const struct expect *e)
{
	unsigned cnt = obuf_iov_count(ob), bad = 0;
	struct iovec *full = malloc(cnt * sizeof(*full));

	CU_ASSERT_PTR_NOT_NULL_FATAL(full);
	for (size_t skip = 0; skip <= e->len; skip++) {
		unsigned nfull = obuf_iov(ob, skip, full, cnt);

		for (unsigned k = 0; k <= nfull; k++) {
			struct iovec *iov = malloc(k * sizeof(*iov) + 1);
			unsigned n = obuf_iov(ob, skip, iov, k);

			if (n != k)
				bad++;
			for (unsigned i = 0; i < n && i < k; i++)
				if (iov[i].iov_base != full[i].iov_base ||
				    iov[i].iov_len != full[i].iov_len)
					bad++;
			free(iov);
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	free(full);
}

/* True if some iovec of the whole obuf points at p: the bytes were not copied. */
static bool iov_points_at(const struct obuf *ob, const uint8_t *p)
{
	struct iovec iov[64];
	unsigned n = obuf_iov(ob, 0, iov, 64);

	for (unsigned i = 0; i < n; i++)
		if (iov[i].iov_base == p)
			return true;
	return false;
}

static void test_empty(void)
{
	struct obuf ob = {0};
	struct iovec iov[2];

	CU_ASSERT_EQUAL(ob.total, 0);
	CU_ASSERT_EQUAL(obuf_iov_count(&ob), 1);
	CU_ASSERT_EQUAL(obuf_iov(&ob, 0, iov, 2), 0);
	CU_ASSERT_EQUAL(obuf_iov(&ob, 0, iov, 0), 0);
	obuf_reset(&ob);
	obuf_release(&ob);
	CU_ASSERT_PTR_NULL(ob.data);
	CU_ASSERT_PTR_NULL(ob.sp);
	obuf_release(&ob); /* twice: still nothing */
	CU_ASSERT_EQUAL(ob.total, 0);
	/* Emptied after use: the same as new. */
	CU_ASSERT_EQUAL(obuf_append(&ob, "abc", 3), ST_OK);
	obuf_reset(&ob);
	CU_ASSERT_EQUAL(obuf_iov(&ob, 0, iov, 2), 0);
	CU_ASSERT_EQUAL(ob.total, 0);
	obuf_release(&ob);
}

/*
 * Zero bytes fit in any obuf: obuf_reserve returns NULL only when out of memory, so
 * reserving or appending nothing in a new (or released) obuf must succeed.
 */
static void test_empty_zero_bytes(void)
{
	struct obuf ob = {0};

	CU_ASSERT_PTR_NOT_NULL(obuf_reserve(&ob, 0));
	CU_ASSERT_EQUAL(obuf_append(&ob, "", 0), ST_OK);
	CU_ASSERT_EQUAL(ob.total, 0);
	obuf_release(&ob);
}

static void test_append(void)
{
	static struct expect e;
	struct obuf ob = {0};
	uint8_t chunk[5000];

	e.len = 0;
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 13 + 1);
	for (int i = 0; i < 300; i++)
		append(&ob, &e, &chunk[i], 1); /* byte by byte across growth */
	append(&ob, &e, chunk, 0);
	append(&ob, &e, chunk, sizeof(chunk));
	append(&ob, &e, chunk + 17, 255);
	CU_ASSERT_EQUAL(ob.len, e.len);
	CU_ASSERT_EQUAL(ob.total, e.len);
	CU_ASSERT(ob.cap >= ob.len);
	CU_ASSERT_EQUAL(memcmp(ob.data, e.b, e.len), 0);
	CU_ASSERT_EQUAL(obuf_iov_count(&ob), 1);
	check_iov_all(&ob, &e);
	obuf_release(&ob);
}

static void test_reserve_commit(void)
{
	static struct expect e;
	struct obuf ob = {0};
	uint8_t *p;

	e.len = 0;
	p = obuf_reserve(&ob, 10);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	memcpy(p, "fixed!", 6);
	obuf_commit(&ob, 6); /* fewer than reserved */
	exp_add(&e, "fixed!", 6);
	CU_ASSERT_EQUAL(ob.len, 6);
	CU_ASSERT_EQUAL(ob.total, 6);
	/* Reserving without committing adds nothing. */
	CU_ASSERT_PTR_NOT_NULL(obuf_reserve(&ob, 100));
	CU_ASSERT_EQUAL(ob.len, 6);
	CU_ASSERT_EQUAL(ob.total, 6);
	/* Growth keeps what was committed; the room starts at the end. */
	p = obuf_reserve(&ob, 3000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_PTR_EQUAL(p, ob.data + 6);
	CU_ASSERT(ob.cap >= 3006);
	for (int i = 0; i < 3000; i++)
		p[i] = (uint8_t)(i ^ 0x5a);
	obuf_commit(&ob, 3000);
	exp_add(&e, p, 3000);
	CU_ASSERT_EQUAL(memcmp(ob.data, e.b, e.len), 0);
	check_iov_all(&ob, &e);
	obuf_release(&ob);
}

/* Splices before any byte, back to back, between copies and at the very end. */
static void test_splices(void)
{
	static struct expect e;
	struct obuf ob = {0};
	struct msg *a = msg_pattern(1500, 1), *b = msg_pattern(1024, 2), *c = msg_pattern(40, 3);

	e.len = 0;
	splice(&ob, &e, a, 0, 1500); /* at offset 0 */
	append(&ob, &e, "\x30\x0a", 2);
	splice(&ob, &e, b, 0, 1024);
	splice(&ob, &e, c, 5, 30); /* back to back with the one before */
	append(&ob, &e, "middle bytes", 12);
	splice(&ob, &e, a, 100, 1); /* one byte, a second reference on a */
	append(&ob, &e, "x", 1);
	splice(&ob, &e, b, 1023, 1); /* last: no copied bytes after it */
	CU_ASSERT_EQUAL(ob.nsp, 5);
	CU_ASSERT_EQUAL(a->refs, 3);
	CU_ASSERT_EQUAL(b->refs, 3);
	CU_ASSERT_EQUAL(c->refs, 2);
	CU_ASSERT_EQUAL(ob.len, 15);
	CU_ASSERT(obuf_iov_count(&ob) >= 5);
	/* Zero copy: the iovecs point into the messages. */
	CU_ASSERT_TRUE(iov_points_at(&ob, msg_payload(a)));
	CU_ASSERT_TRUE(iov_points_at(&ob, msg_payload(b)));
	CU_ASSERT_TRUE(iov_points_at(&ob, msg_payload(c) + 5));
	check_iov_all(&ob, &e);
	/* Copied bytes after splices force a realloc of data; offsets must survive it. */
	for (int i = 0; i < 40; i++)
		append(&ob, &e, "0123456789abcdef0123456789abcdef", 32);
	splice(&ob, &e, c, 0, 40);
	append(&ob, &e, "end", 3);
	check_iov_all(&ob, &e);
	obuf_release(&ob);
	CU_ASSERT_EQUAL(a->refs, 1);
	CU_ASSERT_EQUAL(b->refs, 1);
	CU_ASSERT_EQUAL(c->refs, 1);
	msg_unref(a);
	msg_unref(b);
	msg_unref(c);
}

/* The test_splices contents, with the logical ranges its splices cover. */
static void build_mixed(struct obuf *ob, struct expect *e, struct msg *a, struct msg *b,
                        uint64_t sp[][2], unsigned *nsp)
{
	*nsp = 0;
#define SPLICE(m, off, n)                                                                          \
	do {                                                                                       \
		sp[*nsp][0] = e->len;                                                              \
		splice(ob, e, m, off, n);                                                          \
		sp[(*nsp)++][1] = e->len;                                                          \
	} while (0)
	SPLICE(a, 0, 1500);
	append(ob, e, "\x30\x0a", 2);
	SPLICE(b, 0, 1024);
	SPLICE(b, 5, 30);
	append(ob, e, "middle bytes", 12);
	SPLICE(a, 100, 1);
	append(ob, e, "x", 1);
	SPLICE(b, 1023, 1);
	append(ob, e, "tail", 4);
#undef SPLICE
}

/* obuf_split at every offset: a prefix and a tail that together are the whole, refs kept. */
static void test_split(void)
{
	static struct expect e, head, rest;
	struct msg *a = msg_pattern(1500, 1), *b = msg_pattern(1024, 2);
	uint64_t sp[8][2], acct = 0, total;
	unsigned nsp, bad = 0;

	e.len = 0;
	{
		struct obuf ob = {.acct = &acct};

		build_mixed(&ob, &e, a, b, sp, &nsp);
		total = ob.total;
		obuf_release(&ob);
	}
	for (uint64_t keep = 0; keep <= total + 1; keep++) {
		struct obuf ob = {.acct = &acct}, tail = {.acct = &acct};
		bool inside = keep > total;
		int ret;

		for (unsigned i = 0; i < nsp; i++)
			inside |= keep > sp[i][0] && keep < sp[i][1];
		e.len = 0;
		build_mixed(&ob, &e, a, b, sp, &nsp);
		ret = obuf_split(&ob, keep, &tail);
		if (inside) {
			if (ret != ST_ERR_LIMIT || ob.total != total || tail.total != 0)
				bad++;
			head = e;
			check_iov_all(&ob, &head);
		} else {
			if (ret != ST_OK || ob.total != keep || tail.total != total - keep)
				bad++;
			head.len = 0;
			exp_add(&head, e.b, keep);
			rest.len = 0;
			exp_add(&rest, e.b + keep, total - keep);
			check_iov_all(&ob, &head);
			check_iov_all(&tail, &rest);
		}
		obuf_release(&ob);
		obuf_release(&tail);
		if (acct != 0 || a->refs != 1 || b->refs != 1)
			bad++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	msg_unref(a);
	msg_unref(b);
}

/* Short iovec arrays, for every skip and every iov_max up to what is needed. */
static void test_iov_short(void)
{
	static struct expect e;
	struct obuf ob = {0};
	struct msg *m = msg_pattern(64, 9);

	e.len = 0;
	append(&ob, &e, "head", 4);
	splice(&ob, &e, m, 0, 20);
	splice(&ob, &e, m, 20, 3);
	append(&ob, &e, "mid", 3);
	splice(&ob, &e, m, 40, 24);
	append(&ob, &e, "tail-bytes", 10);
	check_iov_short(&ob, &e);
	obuf_reset(&ob);
	e.len = 0;
	splice(&ob, &e, m, 0, 64);
	append(&ob, &e, "z", 1);
	splice(&ob, &e, m, 1, 2);
	check_iov_short(&ob, &e);
	check_iov_all(&ob, &e);
	obuf_release(&ob);
	CU_ASSERT_EQUAL(m->refs, 1);
	msg_unref(m);
}

static void test_reset(void)
{
	static struct expect e;
	struct obuf ob = {0};
	struct msg *m = msg_pattern(2000, 4), *n = msg_pattern(1200, 5);
	uint8_t *data;
	struct obuf_splice *sp;
	uint32_t cap, sp_cap;

	e.len = 0;
	append(&ob, &e, "abc", 3);
	for (int i = 0; i < 6; i++)
		splice(&ob, &e, m, (uint32_t)i * 100, 1000);
	CU_ASSERT_EQUAL(m->refs, 7);
	data = ob.data;
	cap = ob.cap;
	sp = ob.sp;
	sp_cap = ob.sp_cap;
	obuf_reset(&ob);
	CU_ASSERT_EQUAL(m->refs, 1);
	CU_ASSERT_EQUAL(ob.total, 0);
	CU_ASSERT_EQUAL(ob.len, 0);
	CU_ASSERT_EQUAL(ob.nsp, 0);
	/* The memory stays for the next batch. */
	CU_ASSERT_PTR_EQUAL(ob.data, data);
	CU_ASSERT_EQUAL(ob.cap, cap);
	CU_ASSERT_PTR_EQUAL(ob.sp, sp);
	CU_ASSERT_EQUAL(ob.sp_cap, sp_cap);
	/* The next batch sends only its own bytes. */
	e.len = 0;
	splice(&ob, &e, n, 0, 1200);
	append(&ob, &e, "after reset", 11);
	check_iov_all(&ob, &e);
	CU_ASSERT_EQUAL(n->refs, 2);
	obuf_release(&ob);
	CU_ASSERT_EQUAL(n->refs, 1);
	CU_ASSERT_PTR_NULL(ob.data);
	CU_ASSERT_PTR_NULL(ob.sp);
	CU_ASSERT_EQUAL(ob.cap, 0);
	CU_ASSERT_EQUAL(ob.sp_cap, 0);
	CU_ASSERT_EQUAL(ob.nsp, 0);
	CU_ASSERT_EQUAL(ob.total, 0);
	/* Usable after release. */
	e.len = 0;
	append(&ob, &e, "again", 5);
	splice(&ob, &e, m, 0, 1024);
	check_iov_all(&ob, &e);
	obuf_release(&ob);
	CU_ASSERT_EQUAL(m->refs, 1);
	msg_unref(m);
	msg_unref(n);
}

/* Random appends, reserves and splices; every state checked at every skip. */
static void test_random(void)
{
	static struct expect e;
	struct obuf ob = {0};
	struct msg *pool[4];
	uint32_t held[4] = {0};
	uint64_t st = 0x2545f4914f6cdd1dull;
	uint8_t bytes[300];

	for (unsigned i = 0; i < 4; i++)
		pool[i] = msg_pattern(1100 + i * 300, 10 + i);
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)(255 - i);
	e.len = 0;
	for (int round = 0; round < 60; round++) {
		for (int op = 0; op < 12; op++) {
			st = st * 6364136223846793005ull + 1442695040888963407ull;
			unsigned r = (unsigned)(st >> 33), k = r % 4;
			uint32_t plen = pool[k]->payload_len, off = (r >> 4) % plen;

			if (r % 3 == 0) {
				splice(&ob, &e, pool[k], off, 1 + (r >> 16) % (plen - off));
				held[k]++;
			} else if (r % 3 == 1) {
				append(&ob, &e, bytes, 1 + (r >> 8) % sizeof(bytes));
			} else {
				size_t n = 1 + (r >> 8) % 200;
				uint8_t *p = obuf_reserve(&ob, n + 50);

				CU_ASSERT_PTR_NOT_NULL_FATAL(p);
				memcpy(p, bytes + 50, n);
				obuf_commit(&ob, n);
				exp_add(&e, bytes + 50, n);
			}
		}
		for (unsigned i = 0; i < 4; i++)
			CU_ASSERT_EQUAL(pool[i]->refs, 1 + held[i]);
		check_iov_all(&ob, &e);
		if (round % 3 == 2) {
			obuf_reset(&ob);
			e.len = 0;
			memset(held, 0, sizeof(held));
		}
	}
	obuf_release(&ob);
	for (unsigned i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(pool[i]->refs, 1);
		msg_unref(pool[i]);
	}
}

/* --- msg ---------------------------------------------------------------------------- */

static void test_msg_layout(void)
{
	uint8_t topic[] = "a/b/c", props[] = {0x01, 0x01, 0x23, 0x00, 0x05}, payload[] = "hello";
	struct msg *m = msg_new((struct st_bytes){topic, 5}, (struct st_bytes){props, 5},
	                        (struct st_bytes){payload, 5}, 2, true);
	struct msg *z;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	/* Copies: changing the sources afterwards changes nothing. */
	topic[0] = props[0] = payload[0] = 'X';
	CU_ASSERT_EQUAL(m->refs, 1);
	CU_ASSERT_EQUAL(m->qos, 2);
	CU_ASSERT_TRUE(m->retain);
	CU_ASSERT_EQUAL(m->topic_len, 5);
	CU_ASSERT_EQUAL(m->props_len, 5);
	CU_ASSERT_EQUAL(m->payload_len, 5);
	CU_ASSERT_EQUAL(m->expiry_ms, 0);
	CU_ASSERT_EQUAL(m->rseq, 0);
	CU_ASSERT_EQUAL(memcmp(msg_topic(m), "a/b/c", 5), 0);
	CU_ASSERT_EQUAL(memcmp(msg_props(m), "\x01\x01\x23\x00\x05", 5), 0);
	CU_ASSERT_EQUAL(memcmp(msg_payload(m), "hello", 5), 0);
	CU_ASSERT_PTR_EQUAL(msg_props(m), msg_topic(m) + 5);
	CU_ASSERT_PTR_EQUAL(msg_payload(m), msg_props(m) + 5);
	msg_unref(m);
	/* Empty properties and payload (a retained-message delete). */
	z = msg_new((struct st_bytes){(const uint8_t *)"t", 1}, (struct st_bytes){NULL, 0},
	            (struct st_bytes){NULL, 0}, 0, false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(z);
	CU_ASSERT_EQUAL(z->payload_len, 0);
	CU_ASSERT_EQUAL(z->props_len, 0);
	CU_ASSERT_PTR_EQUAL(msg_payload(z), msg_topic(z) + 1);
	CU_ASSERT_FALSE(z->retain);
	msg_unref(z);
}

static void test_msg_refs(void)
{
	struct msg *m = msg_pattern(100, 7);

	CU_ASSERT_EQUAL(m->refs, 1);
	CU_ASSERT_PTR_EQUAL(msg_ref(m), m);
	CU_ASSERT_PTR_EQUAL(msg_ref(m), m);
	CU_ASSERT_EQUAL(m->refs, 3);
	msg_unref(m);
	msg_unref(m);
	CU_ASSERT_EQUAL(m->refs, 1);
	msg_unref(m); /* freed: ASan reports a leak if not, a use after free if twice */
}

/* The memory counter follows capacity and spliced payloads, and returns to zero. */
static void test_accounting(void)
{
	uint8_t big[3000];
	uint64_t acct = 0;
	struct obuf ob = {.acct = &acct};
	struct msg *m;

	memset(big, 'x', sizeof(big));
	m = msg_new((struct st_bytes){(const uint8_t *)"t", 1}, (struct st_bytes){0},
	            (struct st_bytes){big, sizeof(big)}, 0, false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(obuf_append(&ob, "abc", 3), ST_OK);
	CU_ASSERT_EQUAL(acct, ob.cap); /* the buffer, not the 3 bytes */
	CU_ASSERT_EQUAL(obuf_append(&ob, big, 1000), ST_OK);
	CU_ASSERT_EQUAL(acct, ob.cap);
	CU_ASSERT_EQUAL(obuf_splice(&ob, m, msg_payload(m), m->payload_len), ST_OK);
	CU_ASSERT_EQUAL(acct, ob.cap + ob.sp_cap * sizeof(*ob.sp) + sizeof(big));
	CU_ASSERT_EQUAL(obuf_memory(&ob), acct);
	/* The prediction of an append counts the buffer's doubling, and only when it happens. */
	CU_ASSERT_EQUAL(obuf_memory_after(&ob, ob.cap - ob.len), acct);
	CU_ASSERT_EQUAL(obuf_memory_after(&ob, ob.cap - ob.len + 1), acct + ob.cap);
	CU_ASSERT_EQUAL(obuf_memory_after(&ob, 3 * ob.cap - ob.len + 1), acct + 3 * ob.cap);
	/* Reset: the payload kept alive is gone, the memory kept is still counted. */
	obuf_reset(&ob);
	CU_ASSERT_EQUAL(acct, ob.cap + ob.sp_cap * sizeof(*ob.sp));
	obuf_release(&ob);
	CU_ASSERT_EQUAL(acct, 0);
	CU_ASSERT_PTR_EQUAL(ob.acct, &acct);
	/* Used again after a release: still counted. */
	CU_ASSERT_EQUAL(obuf_append(&ob, "z", 1), ST_OK);
	CU_ASSERT_EQUAL(acct, ob.cap);
	obuf_release(&ob);
	CU_ASSERT_EQUAL(acct, 0);
	msg_unref(m);
}

/* obuf_append_obuf: bytes copied, splices by reference (same payload pointer, one more
 * reference each), at the end of what dst held; an empty source adds nothing. */
static void test_append_obuf(void)
{
	struct msg *m = msg_pattern(5000, 3);
	struct obuf src = {0}, dst = {0}, empty = {0};
	struct expect *e = calloc(1, sizeof(*e)), *junk = calloc(1, sizeof(*junk));
	struct iovec iov[16];
	unsigned refs0 = m->refs;

	append(&dst, e, "\x82\x7e\x00\x00", 4); /* a frame header, say */
	append(&src, junk, "head", 4);
	splice(&src, junk, m, 0, 2000);
	append(&src, junk, "middle", 6);
	splice(&src, junk, m, 2000, 1500);
	splice(&src, junk, m, 3500, 1500);
	append(&src, junk, "tail", 4);
	CU_ASSERT_EQUAL(obuf_append_obuf(&dst, &src), ST_OK);
	exp_add(e, junk->b, junk->len);
	check_iov_all(&dst, e);
	CU_ASSERT_EQUAL(m->refs, refs0 + 6);
	CU_ASSERT(obuf_iov(&dst, 0, iov, 16) >= 3);
	CU_ASSERT_PTR_EQUAL(iov[1].iov_base, msg_payload(m));
	CU_ASSERT_EQUAL(obuf_append_obuf(&dst, &empty), ST_OK);
	check_iov_all(&dst, e);
	obuf_release(&src);
	obuf_release(&dst);
	CU_ASSERT_EQUAL(m->refs, refs0);
	free(e);
	free(junk);
	msg_unref(m);
}

int main(void)
{
	static const struct tu_test obuf_tests[] = {
	        {"append another obuf", test_append_obuf},
	        {"memory accounting", test_accounting},
	        {"empty obuf", test_empty},
	        {"empty obuf: zero bytes", test_empty_zero_bytes},
	        {"append across growth", test_append},
	        {"reserve and commit", test_reserve_commit},
	        {"splices at several offsets", test_splices},
	        {"split at every offset", test_split},
	        {"short iovec arrays", test_iov_short},
	        {"reset keeps memory, release frees it", test_reset},
	        {"random contents", test_random},
	        {NULL, NULL},
	};
	static const struct tu_test msg_tests[] = {
	        {"layout and copies", test_msg_layout},
	        {"references", test_msg_refs},
	        {NULL, NULL},
	};

	tu_add_suite("obuf", obuf_tests);
	tu_add_suite("msg", msg_tests);
	return tu_run_registry();
}
