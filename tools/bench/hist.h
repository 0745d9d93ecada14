/*
 * An HDR-style latency histogram for starling-bench: log-linear buckets over nanoseconds.
 *
 * Values below 256 ns get a bucket each; above, every power-of-two range [2^k, 2^(k+1)) is cut
 * into 128 equal sub-buckets, so a reported percentile is within 1/128 (0.8%) of the true value
 * whatever its magnitude, from 1 ns to the 2^40 ns (18 minutes) the histogram covers. Recording
 * is a count-leading-zeros and an increment, cheap enough to run for every delivered message
 * at tens of millions per second; the whole histogram is 36 KiB and allocation-free.
 */
#ifndef STARLING_BENCH_HIST_H
#define STARLING_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 7u  /* 128 sub-buckets per power of two */
#define BENCH_HIST_MAX_BITS 40u /* values at or above 2^40 ns land in the last bucket */
#define BENCH_HIST_BUCKETS                                                                         \
	((1u << (BENCH_HIST_SUB_BITS + 1)) +                                                       \
	 (BENCH_HIST_MAX_BITS - BENCH_HIST_SUB_BITS - 1) * (1u << BENCH_HIST_SUB_BITS))

struct bench_hist {
	uint64_t counts[BENCH_HIST_BUCKETS]; /* messages per bucket */
	uint64_t total;                      /* messages recorded */
	uint64_t min_ns;                     /* smallest value recorded, UINT64_MAX if none */
	uint64_t max_ns;                     /* largest value recorded, exact */
	uint64_t sum_ns;                     /* sum of values, for the mean */
};

void bench_hist_init(struct bench_hist *h);

/* Records one value in nanoseconds. */
void bench_hist_record(struct bench_hist *h, uint64_t value_ns);

/* Adds src's values to dst, as if every one had been recorded in dst (threads' histograms). */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/*
 * Returns the value at quantile q (0 < q <= 1): the upper edge of the bucket holding the
 * ceil(q * total)-th smallest value, clamped to the exact maximum. 0 when nothing was recorded.
 */
uint64_t bench_hist_quantile_ns(const struct bench_hist *h, double q);

/* Bucket index of a value and the largest value that bucket holds; exported for the tests. */
uint32_t bench_hist_bucket(uint64_t value_ns);
uint64_t bench_hist_bucket_top_ns(uint32_t bucket);

#endif
