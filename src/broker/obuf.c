/*
 * Output buffer growth and iovec construction. Growth doubles from 256 bytes; callers bound
 * the total (max_output_bytes), so an obuf never grows without limit.
 */
#include "obuf.h"

#include <stdlib.h>
#include <string.h>

#include "starling/error.h"

#define OBUF_MIN_CAP 256u

uint8_t *obuf_reserve(struct obuf *ob, size_t n)
{
	size_t need = (size_t)ob->len + n;

	if (need > UINT32_MAX)
		return NULL;
	if (need > ob->cap || !ob->data) {
		size_t cap = ob->cap ? ob->cap : OBUF_MIN_CAP;
		uint8_t *p;

		while (cap < need)
			cap *= 2;
		if (cap > UINT32_MAX)
			cap = UINT32_MAX;
		p = realloc(ob->data, cap);
		if (!p)
			return NULL;
		if (ob->acct)
			*ob->acct += cap - ob->cap;
		ob->data = p;
		ob->cap = (uint32_t)cap;
	}
	return ob->data + ob->len;
}

int obuf_append(struct obuf *ob, const void *p, size_t n)
{
	uint8_t *dst = obuf_reserve(ob, n);

	if (!dst)
		return ST_ERR_NOMEM;
	memcpy(dst, p, n);
	obuf_commit(ob, n);
	return ST_OK;
}

int obuf_splice(struct obuf *ob, struct msg *m, const uint8_t *ptr, uint32_t len)
{
	if (ob->nsp == ob->sp_cap) {
		uint32_t cap = ob->sp_cap ? ob->sp_cap * 2 : 4;
		struct obuf_splice *sp = realloc(ob->sp, cap * sizeof(*sp));

		if (!sp)
			return ST_ERR_NOMEM;
		if (ob->acct)
			*ob->acct += (cap - ob->sp_cap) * sizeof(*sp);
		ob->sp = sp;
		ob->sp_cap = cap;
	}
	ob->sp[ob->nsp++] = (struct obuf_splice){
	        .off = ob->len,
	        .len = len,
	        .ptr = ptr,
	        .m = msg_ref(m),
	};
	ob->total += len;
	if (ob->acct)
		*ob->acct += len;
	return ST_OK;
}

int obuf_append_obuf(struct obuf *dst, const struct obuf *src)
{
	uint32_t pos = 0;

	for (uint32_t i = 0; i < src->nsp; i++) {
		const struct obuf_splice *sp = &src->sp[i];

		if (sp->off > pos && obuf_append(dst, src->data + pos, sp->off - pos) != ST_OK)
			return ST_ERR_NOMEM;
		if (obuf_splice(dst, sp->m, sp->ptr, sp->len) != ST_OK)
			return ST_ERR_NOMEM;
		pos = sp->off;
	}
	if (src->len > pos && obuf_append(dst, src->data + pos, src->len - pos) != ST_OK)
		return ST_ERR_NOMEM;
	return ST_OK;
}

/* Adds [p, p+n) to iov after skipping what was already sent; returns entries added (0/1). */
static unsigned obuf_iov_piece(const uint8_t *p, size_t n, uint64_t *skip, struct iovec *iov)
{
	if (*skip >= n) {
		*skip -= n;
		return 0;
	}
	iov->iov_base = (void *)(p + *skip);
	iov->iov_len = n - *skip;
	*skip = 0;
	return iov->iov_len ? 1 : 0;
}

unsigned obuf_iov(const struct obuf *ob, uint64_t skip, struct iovec *iov, unsigned iov_max)
{
	unsigned n = 0;
	uint32_t off = 0;

	for (uint32_t i = 0; i < ob->nsp && n < iov_max; i++) {
		const struct obuf_splice *sp = &ob->sp[i];

		n += obuf_iov_piece(ob->data + off, sp->off - off, &skip, &iov[n]);
		if (n < iov_max)
			n += obuf_iov_piece(sp->ptr, sp->len, &skip, &iov[n]);
		off = sp->off;
	}
	if (n < iov_max)
		n += obuf_iov_piece(ob->data + off, ob->len - off, &skip, &iov[n]);
	return n;
}

int obuf_split(struct obuf *ob, uint64_t keep, struct obuf *tail)
{
	uint64_t logical = 0;
	uint32_t pos = 0, k = 0, d;

	/* Where `keep` falls: data offset d, with splices [0, k) before it. */
	for (;;) {
		uint32_t next = k < ob->nsp ? ob->sp[k].off : ob->len;

		if (keep <= logical + (next - pos)) {
			d = pos + (uint32_t)(keep - logical);
			break;
		}
		logical += next - pos;
		pos = next;
		if (k == ob->nsp || keep < logical + ob->sp[k].len)
			return ST_ERR_LIMIT;
		logical += ob->sp[k].len;
		k++;
	}
	pos = d;
	for (uint32_t i = k; i < ob->nsp; i++) {
		const struct obuf_splice *sp = &ob->sp[i];

		if (obuf_append(tail, ob->data + pos, sp->off - pos) != ST_OK ||
		    obuf_splice(tail, sp->m, sp->ptr, sp->len) != ST_OK)
			return ST_ERR_NOMEM;
		pos = sp->off;
	}
	if (obuf_append(tail, ob->data + pos, ob->len - pos) != ST_OK)
		return ST_ERR_NOMEM;
	for (uint32_t i = k; i < ob->nsp; i++) {
		if (ob->acct)
			*ob->acct -= ob->sp[i].len;
		msg_unref(ob->sp[i].m);
	}
	ob->nsp = k;
	ob->len = d;
	ob->total = keep;
	return ST_OK;
}

void obuf_reset(struct obuf *ob)
{
	for (uint32_t i = 0; i < ob->nsp; i++) {
		if (ob->acct)
			*ob->acct -= ob->sp[i].len;
		msg_unref(ob->sp[i].m);
	}
	ob->nsp = 0;
	ob->len = 0;
	ob->total = 0;
}

void obuf_release(struct obuf *ob)
{
	uint64_t *acct = ob->acct;

	obuf_reset(ob);
	if (acct)
		*acct -= ob->cap + (uint64_t)ob->sp_cap * sizeof(*ob->sp);
	free(ob->data);
	free(ob->sp);
	*ob = (struct obuf){.acct = acct};
}
