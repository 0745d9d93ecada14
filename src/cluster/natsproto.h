/*
 * The NATS client protocol, both directions, without a socket: what a node needs to speak NATS
 * from a worker's ring itself (kernel-notes/cluster.md, "Where the CPU goes at a low rate"),
 * so that a PUB leaves with the worker's other output and a MSG is read with its other input,
 * no thread in between. Bytes in, views out, as the MQTT codec: the parser never allocates,
 * never copies and never reads past what it is given; the encoders write into the caller's
 * buffer.
 *
 * The protocol (docs.nats.io, "Client Protocol"): a control line of an operation name
 * (case-insensitive) and fields separated by any run of spaces and tabs, ended by CRLF;
 * MSG and HMSG are followed by their content and another CRLF.
 *   server -> client: INFO {json} | MSG subject sid [reply] #bytes | HMSG subject sid [reply]
 *                     #header-bytes #total-bytes | PING | PONG | +OK | -ERR 'text'
 *   client -> server: CONNECT {json} | PUB subject [reply] #bytes | HPUB ... | SUB subject
 *                     [queue] sid | UNSUB sid [max] | PING | PONG
 * A server closes a client whose control line passes its max_control_line (4,096 bytes by
 * default); the parser bounds what it waits for the same way (NATS_LINE_MAX).
 */
#ifndef STARLING_CLUSTER_NATSPROTO_H
#define STARLING_CLUSTER_NATSPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "starling/codec.h"

/* The longest control line read: nats-server's max_control_line default and its INFO (which
 * may list many connect_urls) get more room. */
#define NATS_LINE_MAX 65536

enum nats_op_kind {
	NATS_OP_INFO = 1, /* text: the JSON object */
	NATS_OP_MSG,      /* subject, sid, reply (maybe empty), payload */
	NATS_OP_HMSG,     /* as MSG, and headers (the block, "NATS/1.0..." to its blank line) */
	NATS_OP_PING,
	NATS_OP_PONG,
	NATS_OP_OK,
	NATS_OP_ERR, /* text: the message without its quotes */
};

struct nats_op {
	enum nats_op_kind kind;
	struct st_bytes subject;
	struct st_bytes sid;
	struct st_bytes reply;
	struct st_bytes headers;
	struct st_bytes payload;
	struct st_bytes text;
};

/*
 * Parses the operation at the start of buf[0..len). Returns the bytes it takes (content and
 * final CRLF included), 0 when more bytes are needed, or: ST_ERR_PROTOCOL (an unknown
 * operation, a field missing or extra, a size that is not a decimal number, content not
 * followed by CRLF), ST_ERR_TOO_LARGE (a control line longer than NATS_LINE_MAX, or content
 * over max_payload bytes).
 */
long nats_parse(const uint8_t *buf, size_t len, size_t max_payload, struct nats_op *op);

/* Bytes nats_pub_head writes for a PUB of subject (and reply, may be empty) and n bytes. */
size_t nats_pub_head_size(size_t subject_len, size_t reply_len, size_t n);

/*
 * Writes "PUB subject [reply] n\r\n" into buf[0..cap); the caller appends the n bytes and
 * "\r\n" (so a payload need not be copied into the same buffer). Returns the bytes written or
 * ST_ERR_NO_SPACE.
 */
long nats_pub_head(uint8_t *buf, size_t cap, const char *subject, size_t subject_len,
                   const char *reply, size_t reply_len, size_t n);

/* "SUB subject [queue] sid\r\n"; queue may be NULL or empty. Bytes written or ST_ERR_NO_SPACE. */
long nats_sub(uint8_t *buf, size_t cap, const char *subject, size_t subject_len, const char *queue,
              size_t queue_len, uint64_t sid);

/* "UNSUB sid\r\n". Bytes written or ST_ERR_NO_SPACE. */
long nats_unsub(uint8_t *buf, size_t cap, uint64_t sid);

/* What CONNECT says; strings NUL-terminated, NULL or "" for none. */
struct nats_connect {
	const char *name; /* the connection's name (the node id) */
	const char *user; /* with pass: user and password authentication */
	const char *pass;
	bool echo;         /* false: the server does not send this connection its own messages */
	bool tls_required; /* the connection is TLS */
};

/*
 * "CONNECT {...}\r\n" with verbose and pedantic off, protocol 1 (asynchronous INFO updates),
 * headers and no_responders on; strings escaped as JSON requires. Bytes written or
 * ST_ERR_NO_SPACE.
 */
long nats_connect(uint8_t *buf, size_t cap, const struct nats_connect *c);

/*
 * The sid of a MSG as a number (this client's sids are numbers it chose); false if the sid is
 * empty, not decimal or over 2^63.
 */
bool nats_sid_value(struct st_bytes sid, uint64_t *out);

#endif
