/*
 * The Prometheus text format writer (metrics_text.h). Numbers are formatted with snprintf into
 * the buffer; integers exactly, floating-point values with the fewest digits (15 to 17) that
 * read back as the same double.
 */
#include "metrics_text.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MTEXT_START 4096 /* first allocation */

void mtext_init(struct mtext *t)
{
	memset(t, 0, sizeof(*t));
}

void mtext_free(struct mtext *t)
{
	free(t->buf);
	mtext_init(t);
}

/* Room for n more bytes. */
static bool mtext_room(struct mtext *t, size_t n)
{
	size_t cap = t->cap ? t->cap : MTEXT_START;
	char *nb;

	if (t->failed)
		return false;
	if (t->len + n <= t->cap)
		return true;
	while (cap < t->len + n)
		cap *= 2;
	nb = realloc(t->buf, cap);
	if (!nb) {
		t->failed = true;
		return false;
	}
	t->buf = nb;
	t->cap = cap;
	return true;
}

static void mtext_put(struct mtext *t, const char *s, size_t n)
{
	if (!mtext_room(t, n))
		return;
	memcpy(t->buf + t->len, s, n);
	t->len += n;
}

static void mtext_puts(struct mtext *t, const char *s)
{
	mtext_put(t, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void mtext_printf(struct mtext *t, const char *fmt,
                                                               ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		mtext_put(t, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void mtext_escaped(struct mtext *t, const char *s, bool help)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : NULL;

		if (!esc && *s == '"' && !help)
			esc = "\\\"";
		if (!esc)
			continue;
		mtext_put(t, run, (size_t)(s - run));
		mtext_puts(t, esc);
		run = s + 1;
	}
	mtext_put(t, run, (size_t)(s - run));
}

void mtext_family(struct mtext *t, const char *name, const char *type, const char *help)
{
	mtext_puts(t, "# HELP ");
	mtext_puts(t, name);
	mtext_puts(t, " ");
	mtext_escaped(t, help, true);
	mtext_puts(t, "\n# TYPE ");
	mtext_puts(t, name);
	mtext_puts(t, " ");
	mtext_puts(t, type);
	mtext_puts(t, "\n");
}

/* name{a="x",b="y"  (the closing brace is the caller's, so that le can follow) */
static void mtext_labels(struct mtext *t, const char *name, const struct mtext_label *labels,
                         unsigned n, bool more)
{
	mtext_puts(t, name);
	if (n == 0 && !more)
		return;
	mtext_puts(t, "{");
	for (unsigned i = 0; i < n; i++) {
		if (i)
			mtext_puts(t, ",");
		mtext_puts(t, labels[i].name);
		mtext_puts(t, "=\"");
		mtext_escaped(t, labels[i].value, false);
		mtext_puts(t, "\"");
	}
	if (!more)
		mtext_puts(t, "}");
}

void mtext_sample(struct mtext *t, const char *name, const struct mtext_label *labels, unsigned n,
                  uint64_t value)
{
	mtext_labels(t, name, labels, n, false);
	mtext_printf(t, " %" PRIu64 "\n", value);
}

/* The fewest significant digits (15 to 17) that read back as v: 0.1, not 0.10000000000000001. */
static int mtext_digits(double v)
{
	char tmp[32];

	for (int d = 15; d < 17; d++) {
		snprintf(tmp, sizeof(tmp), "%.*g", d, v);
		if (strtod(tmp, NULL) == v)
			return d;
	}
	return 17;
}

/* A float as the format reads it: Go's ParseFloat takes "+Inf", "-Inf" and "NaN". */
static void mtext_float(struct mtext *t, double v)
{
	if (v != v)
		mtext_puts(t, "NaN");
	else if (v > 1.7976931348623157e308)
		mtext_puts(t, "+Inf");
	else if (v < -1.7976931348623157e308)
		mtext_puts(t, "-Inf");
	else
		mtext_printf(t, "%.*g", mtext_digits(v), v);
}

void mtext_sample_f(struct mtext *t, const char *name, const struct mtext_label *labels, unsigned n,
                    double value)
{
	mtext_labels(t, name, labels, n, false);
	mtext_puts(t, " ");
	mtext_float(t, value);
	mtext_puts(t, "\n");
}

/* One `name_suffix` series name, for the histogram's parts. */
static void mtext_suffixed(char *out, size_t cap, const char *name, const char *suffix)
{
	snprintf(out, cap, "%s%s", name, suffix);
}

void mtext_histogram(struct mtext *t, const char *name, const struct mtext_label *labels,
                     unsigned n, const double *bounds, const uint64_t *counts, unsigned nbounds,
                     double sum)
{
	char part[256];
	uint64_t cum = 0;

	mtext_suffixed(part, sizeof(part), name, "_bucket");
	for (unsigned i = 0; i <= nbounds; i++) {
		cum += counts[i];
		mtext_labels(t, part, labels, n, true);
		mtext_puts(t, n ? ",le=\"" : "le=\"");
		if (i < nbounds)
			mtext_printf(t, "%g", bounds[i]);
		else
			mtext_puts(t, "+Inf");
		mtext_printf(t, "\"} %" PRIu64 "\n", cum);
	}
	mtext_suffixed(part, sizeof(part), name, "_sum");
	mtext_sample_f(t, part, labels, n, sum);
	mtext_suffixed(part, sizeof(part), name, "_count");
	mtext_sample(t, part, labels, n, cum);
}
