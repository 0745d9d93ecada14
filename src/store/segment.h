/*
 * Reading one log segment at start-up (issue 10): the bytes of a whole file in, its header
 * checked, then its records one by one until the first torn or corrupt one. Everything up to
 * that record is the valid prefix; the caller truncates the file there and logs what the
 * reader dropped. Nothing here touches a file: the caller reads (or maps) it.
 *
 * Usage:
 *   struct store_seg seg;
 *   int err = store_seg_open(&seg, bytes, len, workers);   // header errors end here
 *   struct store_rec r;
 *   while (store_seg_next(&seg, &r) > 0)
 *           apply(&r);
 *   // seg.valid_end, seg.stop, seg.records, len - seg.valid_end bytes dropped
 *
 * A segment the broker appends to (STORE_FLAG_COMMITS) is valid up to its last commit record:
 * seg.commit_end; records after it belong to a commit whose write was cut short.
 *
 * Zeros after the last record are space the broker wrote ahead of its appends (so that a
 * commit's fdatasync finds no size or allocation to write): a clean end, not damage. A record
 * never starts with four zero bytes (its body is at least one byte), so the first zero header
 * ends the log without ambiguity; zeros followed by anything else are damage as before.
 */
#ifndef STARLING_STORE_SEGMENT_H
#define STARLING_STORE_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

/* A segment being read; the bytes are borrowed and must outlive every view it returns. */
struct store_seg {
	const uint8_t *data;     /* the whole file (borrowed) */
	size_t len;              /* its size */
	struct store_header hdr; /* the header, once store_seg_open succeeded */
	size_t valid_end;        /* offset just past the last valid record (or the header) */
	uint64_t records;        /* valid records returned so far */
	size_t commit_end;       /* valid_end at the last whole commit (STORE_FLAG_COMMITS), or
	                            valid_end (a segment without commits) */
	uint64_t commit_records; /* records up to commit_end */
	int stop;                /* why reading stopped: 0 (clean end) or a record store_err */
	size_t zero_tail;        /* stop 0: bytes of zeros after valid_end (written ahead) */
};

/*
 * Checks the header of data[0..len) (borrowed) and positions the reader at the first record.
 * Returns 0, STORE_E_NOT_LOG, STORE_E_HEADER, STORE_E_NEWER, or STORE_E_FOREIGN (the file was
 * written by a broker with another worker count than `workers`; 0 accepts any count).
 */
int store_seg_open(struct store_seg *s, const uint8_t *data, size_t len, uint16_t workers);

/*
 * Decodes the next record into *r (views into the segment's bytes). Returns 1 with a record, or
 * 0 when reading stopped: at the clean end (s->stop == 0) or at the first record that is torn
 * or corrupt (s->stop says how). Once it returned 0 it keeps returning 0.
 */
int store_seg_next(struct store_seg *s, struct store_rec *r);

/*
 * Bytes past the valid prefix that are not zeros written ahead: what the caller truncates
 * (valid only after next returned 0).
 */
static inline size_t store_seg_dropped_bytes(const struct store_seg *s)
{
	return s->len - s->valid_end - s->zero_tail;
}

/*
 * Counts the records-looking chunks in the dropped tail for the log line: how many length
 * prefixes, followed one after another, fit in it. A guess (a corrupt length ends the walk),
 * never used to read anything.
 */
uint64_t store_seg_dropped_records(const struct store_seg *s);

#endif
