/*
 * The Prometheus text exposition format, version 0.0.4: a writer of metric families into a
 * growing buffer. Each family is `# HELP name text` and `# TYPE name type`, then its samples
 * (`name{label="value",...} value`), all of one family together. It knows the format, not
 * what the numbers mean.
 *
 * Escaping: in a HELP text a backslash and a line feed become \\ and \n; in a label value also
 * a double quote becomes \". Names are the caller's constants and are not checked here.
 * Histograms take per-bucket counts and write the cumulative `_bucket{le=...}` series ending
 * with le="+Inf", then `_sum` and `_count`; the count is the +Inf bucket's, so the three always
 * agree within one exposition.
 *
 * Memory: the buffer doubles as it fills; a failed allocation marks the writer failed and
 * every later call does nothing (check mtext.failed once at the end).
 */
#ifndef STARLING_HTTP_METRICS_TEXT_H
#define STARLING_HTTP_METRICS_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The Content-Type of what this writer produces. */
#define MTEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#define MTEXT_LABELS_MAX 4 /* labels of one sample, at most */

struct mtext {
	char *buf;   /* the exposition so far (malloc'd), not NUL-terminated */
	size_t len;  /* bytes written */
	size_t cap;  /* bytes allocated */
	bool failed; /* an allocation failed: the text is incomplete */
};

/* A label of a sample; value is any text (escaped when written). */
struct mtext_label {
	const char *name;
	const char *value;
};

void mtext_init(struct mtext *t);

/* Frees the buffer; t may be initialised again. */
void mtext_free(struct mtext *t);

/* Starts a family: its HELP and TYPE lines (type: "counter", "gauge", "histogram"...). */
void mtext_family(struct mtext *t, const char *name, const char *type, const char *help);

/* A sample of an integer value, with n labels (n <= MTEXT_LABELS_MAX; labels may be NULL). */
void mtext_sample(struct mtext *t, const char *name, const struct mtext_label *labels, unsigned n,
                  uint64_t value);

/* The same with a floating-point value (seconds, ratios). */
void mtext_sample_f(struct mtext *t, const char *name, const struct mtext_label *labels, unsigned n,
                    double value);

/*
 * The samples of one histogram series (its family written first with mtext_family):
 * counts[i] observations fell at or below bounds[i] and above bounds[i - 1], for i < nbounds,
 * counts[nbounds] above every bound. bounds ascend. sum: the sum of the observed values.
 */
void mtext_histogram(struct mtext *t, const char *name, const struct mtext_label *labels,
                     unsigned n, const double *bounds, const uint64_t *counts, unsigned nbounds,
                     double sum);

/* Appends a label value (or HELP text, help true) escaped as the format wants. */
void mtext_escaped(struct mtext *t, const char *s, bool help);

#endif
