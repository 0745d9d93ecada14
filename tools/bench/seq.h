/*
 * Per (subscriber, publisher) sequence tracking: duplicates and out-of-order deliveries.
 *
 * Every message carries its publisher's sequence number. A subscriber keeps, per publisher,
 * the highest sequence seen and a 64-bit window of which of the 64 sequences below it arrived.
 * A sequence above the highest moves the window (a gap is not an error here: a subscriber of
 * some of a publisher's topics sees only some sequences, and loss is counted against the
 * expected total instead). One at or below the highest is a duplicate if its bit is set, and
 * out of order otherwise; more than 64 behind it is counted out of order, since the window no
 * longer says whether it came before. 16 bytes per pair.
 */
#ifndef STARLING_BENCH_SEQ_H
#define STARLING_BENCH_SEQ_H

#include <stdint.h>

struct bench_seq {
	uint64_t window; /* bit i: sequence (high - i) was seen; 0 before the first message */
	uint32_t high;   /* highest sequence seen */
	uint32_t pad;    /* keeps the struct 16 bytes */
};

enum bench_seq_verdict {
	BENCH_SEQ_IN_ORDER = 0,  /* the highest so far */
	BENCH_SEQ_DUPLICATE = 1, /* seen before */
	BENCH_SEQ_LATE = 2,      /* below the highest, not seen before: out of order */
};

/* Classifies sequence `seq` from this publisher and records it. */
static inline enum bench_seq_verdict bench_seq_record(struct bench_seq *s, uint32_t seq)
{
	if (s->window == 0 || seq > s->high) {
		uint32_t shift = s->window == 0 ? 64u : seq - s->high;
		s->window = shift >= 64u ? 1u : (s->window << shift) | 1u;
		s->high = seq;
		return BENCH_SEQ_IN_ORDER;
	}
	uint32_t behind = s->high - seq;
	if (behind >= 64u)
		return BENCH_SEQ_LATE;
	uint64_t bit = 1ull << behind;
	if (s->window & bit)
		return BENCH_SEQ_DUPLICATE;
	s->window |= bit;
	return BENCH_SEQ_LATE;
}

#endif
