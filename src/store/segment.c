/*
 * The segment reader (segment.h). One pass over bytes the caller holds, no allocation. The
 * reader stops at the first record that does not decode: a log is written append-only and
 * synced in order, so anything after a bad record was never acknowledged as a whole, and
 * skipping ahead to a later record that happens to look valid could replay a state that never
 * existed (a queue-del without its queue-add's successor, say).
 */
#include "segment.h"

#include <string.h>

int store_seg_open(struct store_seg *s, const uint8_t *data, size_t len, uint16_t workers)
{
	size_t hl = 0;
	int err;

	s->data = data;
	s->len = len;
	s->valid_end = 0;
	s->records = 0;
	s->commit_end = 0;
	s->commit_records = 0;
	s->stop = 0;
	s->zero_tail = 0;
	err = store_header_decode(data, len, &s->hdr, &hl);
	if (err == 0 && workers != 0 && s->hdr.workers != workers)
		err = STORE_E_FOREIGN;
	/* A refused file yields no record, even if the caller goes on to ask for one. */
	s->stop = err;
	if (err == 0)
		s->valid_end = s->commit_end = hl;
	return err;
}

/* Whether data[0..len) is all zeros. */
static int all_zero(const uint8_t *data, size_t len)
{
	static const uint8_t zeros[256];

	while (len >= sizeof(zeros)) {
		if (memcmp(data, zeros, sizeof(zeros)) != 0)
			return 0;
		data += sizeof(zeros);
		len -= sizeof(zeros);
	}
	return memcmp(data, zeros, len) == 0;
}

int store_seg_next(struct store_seg *s, struct store_rec *r)
{
	size_t used = 0;
	int err;

	if (s->stop != 0 || s->zero_tail || s->valid_end == s->len)
		return 0;
	err = store_rec_decode(s->data + s->valid_end, s->len - s->valid_end, r, &used);
	if (err) {
		if (all_zero(s->data + s->valid_end, s->len - s->valid_end))
			s->zero_tail = s->len - s->valid_end;
		else
			s->stop = err;
		return 0;
	}
	s->valid_end += used;
	s->records++;
	if (!(s->hdr.flags & STORE_FLAG_COMMITS) || r->type == STORE_REC_COMMIT) {
		s->commit_end = s->valid_end;
		s->commit_records = s->records;
	}
	return 1;
}

uint64_t store_seg_dropped_records(const struct store_seg *s)
{
	size_t off = s->valid_end;
	uint64_t n = 0;

	while (s->len - off >= STORE_REC_HDR_LEN) {
		uint32_t body = (uint32_t)s->data[off] | (uint32_t)s->data[off + 1] << 8 |
		                (uint32_t)s->data[off + 2] << 16 | (uint32_t)s->data[off + 3] << 24;

		n++;
		if (body == 0 || body > s->len - off - STORE_REC_HDR_LEN)
			break;
		off += STORE_REC_HDR_LEN + body;
	}
	if (s->len - off > 0 && s->len - off < STORE_REC_HDR_LEN)
		n++;
	return n;
}
