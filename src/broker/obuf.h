/*
 * A connection's output: bytes to send, with large payloads spliced in by reference.
 *
 * Small packets are copied in whole (a 30-byte PUBLISH costs less to copy than to describe
 * with iovecs); a payload of OBUF_SPLICE_MIN bytes or more stays in its refcounted message and
 * is recorded as a splice at the current offset, so a 1 MB message fanned out to 1,000
 * subscribers is never copied in user space. obuf_iov() turns bytes + splices into the iovec
 * array of one sendmsg.
 *
 * An obuf with nothing in it holds no memory once obuf_release() ran: idle connections cost
 * nothing here. The memory it holds is counted in *acct (the worker's output memory, which
 * max_output_memory bounds): its buffers' capacity while allocated, and the payload bytes its
 * splices keep alive while queued (counted in full by each obuf: a message shared by many
 * slow readers is counted many times, which errs on the safe side).
 */
#ifndef STARLING_OBUF_H
#define STARLING_OBUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "index/msg.h"

#define OBUF_SPLICE_MIN 1024u

struct obuf_splice {
	uint32_t off;       /* byte offset in data where these bytes go */
	uint32_t len;       /* bytes spliced */
	const uint8_t *ptr; /* first byte, inside *m */
	struct msg *m;      /* reference held until the obuf is reset */
};

struct obuf {
	uint8_t *data;          /* copied bytes */
	uint32_t len;           /* bytes used in data */
	uint32_t cap;           /* bytes allocated for data */
	struct obuf_splice *sp; /* splices in offset order */
	uint32_t nsp;           /* splices used */
	uint32_t sp_cap;        /* splices allocated */
	uint64_t total;         /* len + spliced bytes: what a send of this obuf carries */
	uint64_t *acct;         /* memory counter it adds its own to (see below), or NULL */
};

/*
 * Returns room for n more bytes at the end (commit them with obuf_commit), or NULL when out
 * of memory.
 */
uint8_t *obuf_reserve(struct obuf *ob, size_t n);

static inline void obuf_commit(struct obuf *ob, size_t n)
{
	ob->len += (uint32_t)n;
	ob->total += n;
}

/* Memory the obuf holds: its buffers and the payloads its splices keep alive (as *acct). */
static inline uint64_t obuf_memory(const struct obuf *ob)
{
	return ob->cap + (uint64_t)ob->sp_cap * sizeof(*ob->sp) + (ob->total - ob->len);
}

/* Memory it would hold once n more bytes were copied in (its buffer doubles when full). */
static inline uint64_t obuf_memory_after(const struct obuf *ob, uint64_t n)
{
	uint64_t grow = 0, cap = ob->cap ? ob->cap : 256;

	while (ob->len + n > cap + grow)
		grow += cap + grow;
	return obuf_memory(ob) + grow + (ob->cap ? 0 : cap);
}

/* Appends bytes by copy. Returns ST_OK or ST_ERR_NOMEM. */
int obuf_append(struct obuf *ob, const void *p, size_t n);

/* Appends ptr[0..len) by reference; takes a reference on m. Returns ST_OK or ST_ERR_NOMEM. */
int obuf_splice(struct obuf *ob, struct msg *m, const uint8_t *ptr, uint32_t len);

/* Appends src's contents (bytes copied, splices by reference). ST_OK or ST_ERR_NOMEM (dst may
 * hold a part). */
int obuf_append_obuf(struct obuf *dst, const struct obuf *src);

/*
 * Fills iov (room for iov_max entries) with the obuf's contents starting `skip` bytes in.
 * Returns the number of entries used; the iovecs borrow from the obuf.
 */
unsigned obuf_iov(const struct obuf *ob, uint64_t skip, struct iovec *iov, unsigned iov_max);

/* Number of iovec entries the whole obuf needs. */
static inline unsigned obuf_iov_count(const struct obuf *ob)
{
	return 2 * ob->nsp + 1;
}

/*
 * Moves everything after the first `keep` bytes (of total, at a packet boundary: not inside a
 * splice) into tail, an empty obuf, and truncates ob to keep. ST_OK, ST_ERR_LIMIT (keep past
 * the end or inside a splice: nothing changed) or ST_ERR_NOMEM (tail may hold a part: release
 * it; ob is unchanged).
 */
int obuf_split(struct obuf *ob, uint64_t keep, struct obuf *tail);

/* Drops the contents (and the splices' references) but keeps the memory. */
void obuf_reset(struct obuf *ob);

/* Drops the contents and frees the memory (acct stays). */
void obuf_release(struct obuf *ob);

#endif
