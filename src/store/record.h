/*
 * The persistence log's record codec (issue 10): the file header and the records that make
 * retained messages and persistent sessions durable. Bytes in, views out, as the MQTT codec:
 * decoding never allocates and never reads past the bytes it is given; encoding appends to a
 * caller-owned growable buffer (struct store_buf), so a loop iteration's records go into one
 * contiguous append with no allocation per record beyond the buffer's growth.
 *
 * Layout (all integers little-endian; kernel-notes/persistence.md says why):
 *
 *   file header, 32 bytes:
 *     0  magic      8  "\x89STLOG\r\n"
 *     8  version    u16  STORE_VERSION; a reader refuses a larger one
 *    10  hdr_len    u16  32 in version 1; a reader skips what it does not know
 *    12  flags      u32  feature bits; a set bit this reader does not know refuses the file
 *                         (STORE_FLAG_BASE: a base segment; STORE_FLAG_COMMITS,
 *                         STORE_FLAG_PADDED: see below)
 *    16  worker     u16  index of the worker that wrote it
 *    18  workers    u16  how many workers the broker had
 *    20  segment    u64  segment sequence number (compaction writes the next one)
 *    28  crc        u32  CRC32C of bytes 0..27
 *
 *   record:
 *     0  body_len   u32  bytes of type + payload (1 .. STORE_BODY_MAX)
 *     4  crc        u32  CRC32C of type + payload
 *     8  type       u8   enum store_rec_type
 *     9  payload    body_len - 1 bytes, the type's fields in a fixed order:
 *        u8/u16/u32/u64 fixed width; str = u16 length + bytes; blob = u32 length + bytes.
 *        A payload must be consumed exactly: a field past its end or bytes left over are
 *        malformed.
 */
#ifndef STARLING_STORE_RECORD_H
#define STARLING_STORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "starling/codec.h"

#define STORE_MAGIC_LEN   8
#define STORE_VERSION     1
#define STORE_HEADER_LEN  32
#define STORE_REC_HDR_LEN 8 /* body_len + crc */
/* Header flag bit 1: the segment is a base, a complete state (the first of a chain). */
#define STORE_FLAG_BASE 1u
/*
 * Header flag bit 2: the broker appends to this segment in group commits, each ended by a
 * STORE_REC_COMMIT record; recovery keeps whole commits only (a commit is atomic even when a
 * power cut tears its write).
 */
#define STORE_FLAG_COMMITS 2u
/*
 * Header flag bit 3: the segment may hold pad records (STORE_REC_PAD), which the broker's
 * direct writes put before each commit record so that every commit ends on a block boundary
 * and the next one starts on it (kernel-notes/persistence.md). A reader that does not know
 * pad records refuses the file rather than cutting it at the first one.
 */
#define STORE_FLAG_PADDED 4u
/*
 * Header flag bit 4: the segment may hold session-auth and retain-source records
 * (STORE_REC_SESSION_AUTH, STORE_REC_RETAIN_SOURCE). A reader without them refuses the file
 * rather than cutting the log at the first one, which would lose everything after it; every
 * segment this format writes carries the bit, and the segment a broker appends to gets it at
 * start-up (store_dir_open_append).
 */
#define STORE_FLAG_AUTH 8u
/* Header flag bit 5: the segment may hold share-mark records (STORE_REC_SHARE_MARK), with
 * the same rule as bit 4. */
#define STORE_FLAG_MARKS 16u
/* The bits of record kinds every segment this format writes carries (store_dir_open_append
 * adds them to the segment a broker appends to). */
#define STORE_FLAGS_RECORDS (STORE_FLAG_AUTH | STORE_FLAG_MARKS)
/* The feature bits this reader knows; any other set bit refuses the file as newer. */
#define STORE_FLAGS_KNOWN                                                                          \
	(STORE_FLAG_BASE | STORE_FLAG_COMMITS | STORE_FLAG_PADDED | STORE_FLAG_AUTH |              \
	 STORE_FLAG_MARKS)
/*
 * The largest body: an MQTT packet is at most 268,435,460 bytes, so a message's topic, props
 * and payload fit with room for the fixed fields. A larger length is corruption, never a
 * reason to allocate or wait for more bytes.
 */
#define STORE_BODY_MAX ((1u << 28) + (1u << 18))

extern const uint8_t store_magic[STORE_MAGIC_LEN];

/* What the store layer reports; 0 is success. */
enum store_err {
	STORE_OK = 0,
	STORE_E_NOT_LOG = -1,   /* too short for a header, or not Starling's magic */
	STORE_E_HEADER = -2,    /* Starling's magic, but the header's CRC or fields are wrong */
	STORE_E_NEWER = -3,     /* a newer format version, or feature flags this reader lacks */
	STORE_E_FOREIGN = -4,   /* written by a broker with another worker count */
	STORE_E_TORN = -5,      /* the bytes end inside a record (a write cut short) */
	STORE_E_TOO_LONG = -6,  /* a record length of 0 or above STORE_BODY_MAX */
	STORE_E_CRC = -7,       /* the record's CRC32C does not match */
	STORE_E_TYPE = -8,      /* a record type this reader does not know */
	STORE_E_MALFORMED = -9, /* a payload whose fields overrun, underrun or are out of range */
	STORE_E_NOMEM = -10,    /* the output buffer could not grow */
	STORE_E_FIELD = -11,    /* encode: a field too long or out of range for its type */
	STORE_E__MIN = -11,
};

/* A short English description of a store_err (never NULL). */
const char *store_strerror(int err);

enum store_rec_type {
	STORE_REC_RETAIN_SET = 1,   /* topic, qos, props, payload, expiry_ms */
	STORE_REC_RETAIN_DEL = 2,   /* topic */
	STORE_REC_SESSION_PUT = 3,  /* client, protocol, expiry_interval_s, expiry_ms */
	STORE_REC_SESSION_DEL = 4,  /* client (and everything the session held) */
	STORE_REC_SUB_ADD = 5,      /* client, filter, options, sub_id */
	STORE_REC_SUB_DEL = 6,      /* client, filter */
	STORE_REC_QUEUE_ADD = 7,    /* client, msg_id, topic, qos, retain, props, payload, expiry */
	STORE_REC_QUEUE_DEL = 8,    /* client, msg_id */
	STORE_REC_INFLIGHT_SET = 9, /* client, packet_id, msg_id, stage */
	STORE_REC_INFLIGHT_CLEAR = 10, /* client, packet_id */
	STORE_REC_INBOUND_ADD = 11,    /* client, packet_id (QoS 2 awaiting PUBREL) */
	STORE_REC_INBOUND_DEL = 12,    /* client, packet_id */
	STORE_REC_WILL_SET = 13,       /* client, topic, qos, retain, props, payload, expiry_ms */
	STORE_REC_WILL_CLEAR = 14,     /* client */
	STORE_REC_COMMIT = 15,         /* (none): the end of one group commit */
	STORE_REC_ORIGIN = 16,         /* source, origin_lo, origin: see "Origins" below */
	STORE_REC_INBOUND_ORIGIN =
	        17,         /* client, packet_id, origin: an inbound-add with its origin */
	STORE_REC_PAD = 18, /* filler of any length, ignored (STORE_FLAG_PADDED segments) */
	STORE_REC_SESSION_AUTH = 19,  /* client, has_user, listener, user: who the session is */
	STORE_REC_RETAIN_SOURCE = 20, /* topic, has_user, listener, client, user: who set it */
	STORE_REC_SHARE_MARK = 21,    /* source, origin, filter (a $share key): see below */
	STORE_REC__MAX = 21,
};

/*
 * Origins (several workers, QoS 2 from a durable session): the publisher's worker numbers each
 * such message (1, 2, ...; below STORE_ORIGIN_MAX) and keeps the number with the packet id
 * (inbound-origin); the workers it forwards the message to remember, per source worker, which
 * numbers they handled. STORE_REC_ORIGIN [origin_lo, origin] with source == the log's own
 * worker says its counter reached `origin`; with another source, that every number of the
 * interval from that worker was handled here (applied, or not meant for this worker). A
 * PUBLISH resent for a packet id restored from the log is forwarded again with its number, and
 * a worker that handled it ignores it.
 */
#define STORE_ORIGIN_MAX (1ull << 48)

/*
 * Share-mark: the shared group `filter` ("$share/name/filter") took its copy of the message
 * with origin `origin` from worker `source`, into a session of this log, in the same commit.
 * The group's worker, which chooses the member, learns at start-up which copies survived a
 * crash, so that a PUBLISH resent after it reaches the group exactly once (kernel-notes/
 * persistence.md, "Several workers"). Written only for messages that carry an origin.
 */

/*
 * Session-auth (with an acl_file, what a session may read is decided by who its client is):
 * written after each session-put, it names the user the session's last connection
 * authenticated as and its listener (the security domain), so that a session restored at
 * start-up is checked against the ACL as its client would be, before that client is back.
 * A session restored without one (a log from before this record) reads nothing until its
 * client reconnects.
 *
 * Retain-source (check_retain_source): written after a retain-set whose message keeps who
 * published it, so that a retained message restored at start-up is still sent only while its
 * publisher may write its topic. A retain-set or retain-del of the topic drops it.
 */

/* The outbound QoS 2 stage of an in-flight packet id (QoS 1 uses STORE_STAGE_PUBLISH). */
enum store_stage {
	STORE_STAGE_PUBLISH = 1, /* PUBLISH sent, awaiting PUBACK or PUBREC */
	STORE_STAGE_PUBREL = 2,  /* PUBREC received, PUBREL sent, awaiting PUBCOMP */
};

/*
 * One record, decoded or to encode. Only the fields its type lists (enum store_rec_type) are
 * encoded; the others are ignored by the encoder and left zero by the decoder. Views borrow
 * the decoded bytes (or, to encode, the caller's).
 */
struct store_rec {
	uint8_t type;               /* enum store_rec_type */
	uint8_t qos;                /* 0..2 (retained, queued, will) */
	uint8_t retain;             /* 0/1: the retain flag of a queued message or will */
	uint8_t protocol;           /* MQTT protocol level 3, 4 or 5 of a session */
	uint8_t options;            /* subscription options byte, as in SUBSCRIBE */
	uint8_t stage;              /* enum store_stage of an in-flight packet id */
	uint16_t packet_id;         /* in-flight or inbound packet id, never 0 */
	uint32_t sub_id;            /* subscription identifier, 0 = none */
	uint32_t expiry_interval_s; /* session expiry interval as the client asked */
	uint64_t expiry_ms;         /* absolute wall-clock deadline (ms since the epoch), 0 = none:
	                               message expiry, session expiry while offline, will delay */
	uint64_t msg_id;            /* a queued message's id, unique within its session */
	uint64_t origin;            /* origin number (1 .. STORE_ORIGIN_MAX - 1) */
	uint64_t origin_lo;         /* origin record: first number of its interval (<= origin) */
	uint16_t source;            /* the worker an origin number comes from */
	uint8_t has_user;           /* session-auth, retain-source: 1 if CONNECT gave a user name */
	uint16_t listener;          /* session-auth, retain-source: the listener it came in on */
	struct st_bytes client;     /* client identifier, 1..65535 bytes */
	struct st_bytes topic;      /* topic name (retained, queued, will), 1..65535 bytes */
	struct st_bytes filter;     /* topic filter of a subscription, 1..65535 bytes */
	struct st_bytes props; /* MQTT 5 properties as received (no length prefix), may be empty */
	struct st_bytes payload; /* application message, may be empty */
	struct st_bytes user;    /* session-auth, retain-source: the user name (none: empty) */
};

/* The segment file's header. */
struct store_header {
	uint16_t version; /* format version of the file */
	uint32_t flags;   /* feature bits */
	uint16_t worker;  /* worker index that wrote it, < workers */
	uint16_t workers; /* worker count of the broker that wrote it, >= 1 */
	uint64_t segment; /* segment sequence number */
};

/* A growable byte buffer the caller owns; zero-initialise, release with store_buf_free. */
struct store_buf {
	uint8_t *data; /* owned; NULL before the first growth */
	size_t len;    /* bytes written */
	size_t cap;    /* bytes allocated */
	size_t align;  /* 0, or data's address is a multiple of it (store_buf_align) */
};

/* Makes room for `more` bytes past len; 0 or STORE_E_NOMEM (the buffer is unchanged). */
int store_buf_reserve(struct store_buf *b, size_t more);
/*
 * From now on data sits at a multiple of `align` (a power of two; 0: anywhere), moved now if
 * it does not (direct writes need it). 0 or STORE_E_NOMEM (the buffer is unchanged).
 */
int store_buf_align(struct store_buf *b, size_t align);
/*
 * Appends a pad record of exactly `total` bytes (at least STORE_PAD_MIN): 0, STORE_E_FIELD
 * (too short or too long) or STORE_E_NOMEM.
 */
int store_pad_encode(struct store_buf *b, size_t total);
#define STORE_PAD_MIN    (STORE_REC_HDR_LEN + 1)
#define STORE_COMMIT_LEN (STORE_REC_HDR_LEN + 1) /* a commit record's size */
/* Frees the buffer's memory; b may be reused afterwards. */
void store_buf_free(struct store_buf *b);

/*
 * CRC32C (Castagnoli, iSCSI's) with the usual pre- and post-inversion: store_crc32c(0, "123456789",
 * 9) == 0xE3069283. Chains: store_crc32c(store_crc32c(0, a, n), b, m) is the CRC of a then b.
 */
uint32_t store_crc32c(uint32_t crc, const void *data, size_t len);

/* Appends a version-1 header; 0, STORE_E_FIELD (worker >= workers) or STORE_E_NOMEM. */
int store_header_encode(struct store_buf *b, const struct store_header *h);

/*
 * Reads a header from the start of data (borrowed). Returns 0, STORE_E_NOT_LOG, STORE_E_HEADER
 * or STORE_E_NEWER; on 0 *h holds it and *hdr_len the bytes to skip to the first record.
 */
int store_header_decode(const uint8_t *data, size_t len, struct store_header *h, size_t *hdr_len);

/*
 * Appends one record (r borrowed). Returns 0, STORE_E_FIELD (a field out of range or too long
 * for the type: nothing is appended) or STORE_E_NOMEM.
 */
int store_rec_encode(struct store_buf *b, const struct store_rec *r);

/*
 * As store_rec_encode; on 0, *out (if not NULL) is a copy of r whose byte fields of the type
 * are views into the bytes just appended to b (valid until b next grows): where a key lies in
 * an encoded record, without decoding it again.
 */
int store_rec_encode_views(struct store_buf *b, const struct store_rec *r, struct store_rec *out);

/*
 * Decodes the record at the start of data[0..len) (borrowed): on 0, *r holds views into data
 * and *used the record's size. Errors: STORE_E_TORN (len ends inside the record),
 * STORE_E_TOO_LONG, STORE_E_CRC, STORE_E_TYPE, STORE_E_MALFORMED. The length is checked against
 * len and STORE_BODY_MAX before anything else reads the body.
 */
int store_rec_decode(const uint8_t *data, size_t len, struct store_rec *r, size_t *used);

/* The record type's name ("retain-set"), or "unknown". */
const char *store_rec_type_name(unsigned type);

#endif
