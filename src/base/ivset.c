/* Interval sets (ivset.h). */
#include "ivset.h"

#include <stdlib.h>
#include <string.h>

#include "starling/error.h"

/* Index of the first interval whose hi >= x (n if none). */
static uint32_t first_not_below(const struct ivset *s, uint64_t x)
{
	uint32_t a = 0, b = s->n;

	while (a < b) {
		uint32_t m = a + (b - a) / 2;

		if (s->v[m].hi < x)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

bool ivset_has(const struct ivset *s, uint64_t x)
{
	uint32_t i = first_not_below(s, x);

	return i < s->n && s->v[i].lo <= x;
}

int ivset_add(struct ivset *s, uint64_t lo, uint64_t hi)
{
	/* Intervals that overlap or touch [lo, hi] are i .. j - 1. */
	uint32_t i = first_not_below(s, lo == 0 ? 0 : lo - 1), j = i;

	while (j < s->n && (hi == UINT64_MAX || s->v[j].lo <= hi + 1))
		j++;
	if (i == j) {
		if (s->n == s->cap) {
			uint32_t cap = s->cap ? 2 * s->cap : 4;
			struct iv *v = realloc(s->v, cap * sizeof(*v));

			if (!v)
				return ST_ERR_NOMEM;
			s->v = v;
			s->cap = cap;
		}
		memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof(*s->v));
		s->v[i] = (struct iv){lo, hi};
		s->n++;
		return ST_OK;
	}
	if (s->v[i].lo < lo)
		lo = s->v[i].lo;
	if (s->v[j - 1].hi > hi)
		hi = s->v[j - 1].hi;
	s->v[i] = (struct iv){lo, hi};
	memmove(s->v + i + 1, s->v + j, (s->n - j) * sizeof(*s->v));
	s->n -= j - i - 1;
	return ST_OK;
}

uint64_t ivset_max(const struct ivset *s)
{
	return s->n ? s->v[s->n - 1].hi : 0;
}

void ivset_free(struct ivset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}
