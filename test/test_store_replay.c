/*
 * Replay of the persistence log (src/store/) against a plain model (store_model.h): random
 * operations on retained messages and sessions are applied to the model directly and encoded
 * into a log; decoding the log and applying its records must rebuild the same model. Then the
 * damage a crash or a disk can do: every truncation point yields exactly the records wholly
 * before the cut, and every single flipped bit is caught or leaves a valid shorter prefix,
 * never a record that differs from what was written. Inputs sit right before a guard page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "store/record.h"
#include "store/segment.h"
#include "store_gen.h"
#include "store_model.h"
#include "testutil.h"

/* The generator of random records valid against the model is store_gen.h's (shared with the
 * directory and state tests): sgen_record with 6 clients and no orphans. */

/* A log of n random records; model gets them applied directly, ends[i] the end of record i. */
static void build_log(struct store_buf *b, struct model *m, size_t *ends, size_t n)
{
	struct store_header h = {.workers = 4, .worker = 2, .segment = 7};
	struct sgen g = {.clients = 6};

	b->len = 0;
	CU_ASSERT_EQUAL_FATAL(store_header_encode(b, &h), 0);
	for (size_t i = 0; i < n; i++) {
		sgen_record(&g, m);
		CU_ASSERT_EQUAL_FATAL(store_rec_encode(b, &g.r), 0);
		model_apply(m, &g.r);
		ends[i] = b->len;
	}
}

/* Replays data[0..len) into m; returns the records read (-1 if the header failed). */
static long replay(const uint8_t *data, size_t len, struct model *m, struct store_seg *seg)
{
	struct store_rec r;

	if (store_seg_open(seg, data, len, 4) != 0)
		return -1;
	while (store_seg_next(seg, &r) > 0)
		model_apply(m, &r);
	return (long)seg->records;
}

static void test_random_replay_equals_model(void)
{
	struct tu_guard guard = {0};
	struct store_buf b = {0};
	size_t ends[600];

	srand(1);
	for (int round = 0; round < 20; round++) {
		struct model direct = {0}, replayed = {0};
		struct store_seg seg;
		size_t n = 1 + tu_rand(600);
		const uint8_t *p;

		build_log(&b, &direct, ends, n);
		p = tu_guard_copy(&guard, b.data, b.len);
		CU_ASSERT_EQUAL(replay(p, b.len, &replayed, &seg), (long)n);
		CU_ASSERT_EQUAL(seg.stop, 0);
		CU_ASSERT_EQUAL(seg.valid_end, b.len);
		CU_ASSERT_EQUAL(store_seg_dropped_bytes(&seg), 0);
		CU_ASSERT_EQUAL(replayed.orphans, 0);
		CU_ASSERT(direct.orphans == 0);
		CU_ASSERT(model_equal(&direct, &replayed));
		CU_ASSERT(direct.n > 0);
		model_free(&direct);
		model_free(&replayed);
	}
	store_buf_free(&b);
	tu_guard_release(&guard);
}

/* Every cut of a log: the records wholly before it, nothing past it, the right stop reason. */
static void test_every_truncation(void)
{
	struct tu_guard guard = {0};
	struct store_buf b = {0};
	struct model full = {0};
	size_t ends[150], k = 0;

	srand(2);
	build_log(&b, &full, ends, 150);
	for (size_t cut = 0; cut <= b.len; cut++) {
		const uint8_t *p = tu_guard_copy(&guard, b.data, cut);
		struct store_seg seg;
		struct store_rec r;
		int err = store_seg_open(&seg, p, cut, 4);

		if (cut < STORE_HEADER_LEN) {
			CU_ASSERT_EQUAL(err,
			                cut < STORE_MAGIC_LEN ? STORE_E_NOT_LOG : STORE_E_NOT_LOG);
			continue;
		}
		CU_ASSERT_EQUAL_FATAL(err, 0);
		while (k < 150 && ends[k] <= cut)
			k++;
		while (store_seg_next(&seg, &r) > 0)
			;
		CU_ASSERT_EQUAL(seg.records, k);
		CU_ASSERT_EQUAL(seg.valid_end, k ? ends[k - 1] : STORE_HEADER_LEN);
		CU_ASSERT_EQUAL(seg.stop, seg.valid_end == cut ? 0 : STORE_E_TORN);
		CU_ASSERT_EQUAL(store_seg_dropped_bytes(&seg), cut - seg.valid_end);
		CU_ASSERT_EQUAL(store_seg_dropped_records(&seg), seg.valid_end == cut ? 0 : 1);
		CU_ASSERT_EQUAL(store_seg_next(&seg, &r), 0);
	}
	model_free(&full);
	store_buf_free(&b);
	tu_guard_release(&guard);
}

/* At each record boundary the replayed prefix equals the model of the first k operations. */
static void test_prefix_models(void)
{
	struct store_buf b = {0};
	struct model full = {0};
	size_t ends[120];

	srand(3);
	build_log(&b, &full, ends, 120);
	for (size_t k = 0; k <= 120; k += 7) {
		struct model replayed = {0}, ref = {0};
		size_t cut = k ? ends[k - 1] : STORE_HEADER_LEN;
		struct store_seg seg, seg2;
		struct store_rec r;

		CU_ASSERT_EQUAL(replay(b.data, cut, &replayed, &seg), (long)k);
		/* The reference: the full log's first k records, read from the whole file. */
		CU_ASSERT_EQUAL_FATAL(store_seg_open(&seg2, b.data, b.len, 4), 0);
		for (size_t i = 0; i < k && store_seg_next(&seg2, &r) > 0; i++)
			model_apply(&ref, &r);
		CU_ASSERT(model_equal(&replayed, &ref));
		model_free(&replayed);
		model_free(&ref);
	}
	model_free(&full);
	store_buf_free(&b);
}

/*
 * Every single-bit flip: the header refuses the file, or the reader stops at or before the
 * damaged record, and every record it returned lies wholly before the flipped byte.
 */
static void test_every_bit_flip(void)
{
	struct tu_guard guard = {0};
	struct store_buf b = {0};
	struct model full = {0};
	size_t ends[60];
	uint8_t *copy;

	srand(4);
	build_log(&b, &full, ends, 60);
	copy = malloc(b.len);
	for (size_t pos = 0; pos < b.len; pos++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			struct store_seg seg;
			struct store_rec r;
			const uint8_t *p;
			int err;

			memcpy(copy, b.data, b.len);
			copy[pos] ^= (uint8_t)(1u << bit);
			p = tu_guard_copy(&guard, copy, b.len);
			err = store_seg_open(&seg, p, b.len, 4);
			if (pos < STORE_HEADER_LEN) {
				CU_ASSERT(err == STORE_E_NOT_LOG || err == STORE_E_HEADER);
				continue;
			}
			CU_ASSERT_EQUAL_FATAL(err, 0);
			while (store_seg_next(&seg, &r) > 0)
				;
			CU_ASSERT(seg.valid_end <= pos);
			CU_ASSERT(seg.stop != 0);
			CU_ASSERT(seg.valid_end < b.len);
		}
	}
	free(copy);
	model_free(&full);
	store_buf_free(&b);
	tu_guard_release(&guard);
}

/*
 * A tail of zeros written ahead after the last record is a clean end (nothing dropped, the
 * file not cut); zeros followed by anything else are damage, cut at the last record.
 */
static void test_zero_tail(void)
{
	struct store_buf b = {0};
	struct model full = {0};
	struct store_seg seg;
	struct store_rec r;
	size_t ends[10], valid;

	srand(5);
	build_log(&b, &full, ends, 10);
	valid = b.len;
	CU_ASSERT_EQUAL_FATAL(store_buf_reserve(&b, 4096), 0);
	memset(b.data + b.len, 0, 4096);
	b.len += 4096;
	CU_ASSERT_EQUAL_FATAL(store_seg_open(&seg, b.data, b.len, 0), 0);
	while (store_seg_next(&seg, &r) > 0)
		;
	CU_ASSERT_EQUAL(seg.records, 10);
	CU_ASSERT_EQUAL(seg.valid_end, valid);
	CU_ASSERT_EQUAL(seg.stop, 0);
	CU_ASSERT_EQUAL(seg.zero_tail, 4096);
	CU_ASSERT_EQUAL(store_seg_dropped_bytes(&seg), 0);
	CU_ASSERT_EQUAL(store_seg_next(&seg, &r), 0); /* and it stays ended */
	/* One byte that is not zero anywhere in the tail: damage, as before. */
	for (size_t at = 0; at < 4096; at += 1021) {
		b.data[valid + at] = 1;
		CU_ASSERT_EQUAL_FATAL(store_seg_open(&seg, b.data, b.len, 0), 0);
		while (store_seg_next(&seg, &r) > 0)
			;
		CU_ASSERT_EQUAL(seg.records, 10);
		CU_ASSERT_EQUAL(seg.valid_end, valid);
		CU_ASSERT(seg.stop != 0);
		CU_ASSERT_EQUAL(seg.zero_tail, 0);
		CU_ASSERT_EQUAL(store_seg_dropped_bytes(&seg), 4096);
		b.data[valid + at] = 0;
	}
	/* A tail shorter than a record header is a clean end too. */
	CU_ASSERT_EQUAL_FATAL(store_seg_open(&seg, b.data, valid + 3, 0), 0);
	while (store_seg_next(&seg, &r) > 0)
		;
	CU_ASSERT_EQUAL(seg.stop, 0);
	CU_ASSERT_EQUAL(seg.zero_tail, 3);
	model_free(&full);
	store_buf_free(&b);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"random operations: replay equals the model", test_random_replay_equals_model},
	        {"every truncation point yields the prefix before it", test_every_truncation},
	        {"replayed prefixes equal the model of their records", test_prefix_models},
	        {"every single-bit flip is caught or leaves a prefix", test_every_bit_flip},
	        {"a zero-filled tail is a clean end", test_zero_tail},
	        {NULL, NULL},
	};

	tu_add_suite("store replay", tests);
	return tu_run_registry();
}
