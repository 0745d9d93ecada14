/*
 * The HDR-style histogram of hist.h. Bucket layout, with S = BENCH_HIST_SUB_BITS:
 *   buckets [0, 2^(S+1))            values 0 .. 2^(S+1) - 1, one value each;
 *   then per octave k >= S+1         [2^k, 2^(k+1)) in 2^S buckets of width 2^(k-S).
 * The index of v >= 2^(S+1) is 2^(S+1) + (k - S - 1) * 2^S + ((v >> (k - S)) - 2^S), where k is
 * the position of v's highest set bit.
 */
#include "hist.h"

#include <string.h>

void bench_hist_init(struct bench_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min_ns = UINT64_MAX;
}

uint32_t bench_hist_bucket(uint64_t value_ns)
{
	const uint32_t sub = 1u << BENCH_HIST_SUB_BITS;

	if (value_ns < 2u * sub)
		return (uint32_t)value_ns;
	uint32_t k = 63u - (uint32_t)__builtin_clzll(value_ns);
	if (k >= BENCH_HIST_MAX_BITS)
		return BENCH_HIST_BUCKETS - 1;
	uint32_t shift = k - BENCH_HIST_SUB_BITS;
	return 2u * sub + (k - BENCH_HIST_SUB_BITS - 1u) * sub +
	       (uint32_t)((value_ns >> shift) - sub);
}

uint64_t bench_hist_bucket_top_ns(uint32_t bucket)
{
	const uint32_t sub = 1u << BENCH_HIST_SUB_BITS;

	if (bucket < 2u * sub)
		return bucket;
	uint32_t rel = bucket - 2u * sub;
	uint32_t octave = rel / sub;  /* 0 for k = S + 1 */
	uint32_t shift = octave + 1u; /* k - S */
	uint64_t low = (uint64_t)(sub + rel % sub) << shift;
	return low + (1ull << shift) - 1u;
}

void bench_hist_record(struct bench_hist *h, uint64_t value_ns)
{
	h->counts[bench_hist_bucket(value_ns)]++;
	h->total++;
	h->sum_ns += value_ns;
	if (value_ns < h->min_ns)
		h->min_ns = value_ns;
	if (value_ns > h->max_ns)
		h->max_ns = value_ns;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	for (uint32_t b = 0; b < BENCH_HIST_BUCKETS; b++)
		dst->counts[b] += src->counts[b];
	dst->total += src->total;
	dst->sum_ns += src->sum_ns;
	if (src->min_ns < dst->min_ns)
		dst->min_ns = src->min_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
}

uint64_t bench_hist_quantile_ns(const struct bench_hist *h, double q)
{
	if (h->total == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->total + 0.999999);
	if (rank == 0)
		rank = 1;
	if (rank > h->total)
		rank = h->total;
	uint64_t seen = 0;
	for (uint32_t b = 0; b < BENCH_HIST_BUCKETS; b++) {
		seen += h->counts[b];
		if (seen >= rank) {
			uint64_t top = bench_hist_bucket_top_ns(b);
			return top < h->max_ns ? top : h->max_ns;
		}
	}
	return h->max_ns;
}
