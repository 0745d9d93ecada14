/*
 * Persistent sessions across the cluster's nodes (issue 14): the pure pieces, without libnats.
 *
 * A JetStream key-value bucket per cluster_name ("sessions-<name escaped>") holds one entry per
 * persistent session: which node owns it and what the session is without its messages (the
 * persistence log's own records: a SESSION_PUT and its SUB_ADDs, src/store/record.h), so that
 * a node can start the session from the bucket when its owner is gone. A node that gets a
 * CONNECT resuming a session it does not hold asks the owner (a NATS request on
 * "<cluster>.s.t.<owner's id in hex>"); the owner closes its client, hands the whole session
 * over (records again, messages included) and forgets it; the asking node claims the entry with
 * compare-and-set (src/broker/cluster_session.c).
 *
 * Layouts (version 1), integers big-endian:
 *   entry:    0xC0 'O' 1 | u8 node length n (1..CLUSTER_NODE_ID_MAX) | node[n] | records
 *   request:  0xC0 'T' 1 | u8 n | the asking node[n] | client id (the rest, 0..65535 bytes)
 *   answer:   0xC0 'A' 1 | u8 status (CLUSTER_SESS_NONE / _HERE / _ELSEWHERE) | u32 messages
 *             dropped (those that did not fit) | records (HERE) or a node id (ELSEWHERE)
 */
#ifndef STARLING_CLUSTER_SESSION_H
#define STARLING_CLUSTER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "starling/codec.h"

/* "sessions-" and the longest cluster_name, every byte of it doubled, and a NUL. */
#define CLUSTER_SESS_BUCKET_MAX (9 + 2 * 64 + 1)
/* A key: "c_" and a plain id of up to CLUSTER_SESS_PLAIN_MAX bytes, or "h_" and 32 hex. */
#define CLUSTER_SESS_PLAIN_MAX 200
#define CLUSTER_SESS_KEY_MAX   (2 + CLUSTER_SESS_PLAIN_MAX + 1)
/* The owner's request subject: "<prefix>s.t." and a node id in hex. */
#define CLUSTER_SESS_SUBJECT_MAX (65 + 4 + 2 * 255 + 1)

enum {
	CLUSTER_SESS_NONE = 0, /* the owner has no such session (any more) */
	CLUSTER_SESS_HERE = 1, /* the session follows, the owner forgot it */
	/* Not here any more: handed to (or taken by) the node whose id follows, moments ago. The
	 * asking node asks that one, as one broker hands a session from each connection to the
	 * next when a client connects several times at once. */
	CLUSTER_SESS_ELSEWHERE = 2,
};

/* The bucket of a cluster_name ("sessions-" + the escaping of retained.h); -1 if it fails. */
long cluster_sessions_bucket(const char *name, size_t len, char *buf, size_t cap);

/*
 * A client id's key, written with a NUL into buf[0..cap): "c_<id>" when the id is 1 to
 * CLUSTER_SESS_PLAIN_MAX bytes of [A-Za-z0-9_-] (readable in `nats kv ls`), otherwise
 * "h_<XXH3-128 of the id in hex>" (any bytes, any length). The two forms cannot meet, so
 * distinct ids get distinct keys but for a 128-bit hash collision. Its length, or -1.
 */
long cluster_session_key(const uint8_t *id, size_t len, char *buf, size_t cap);

/* The subject a node takes hand-over requests on: "<prefix>s.t.<node id in hex>"; or -1. */
long cluster_session_subject(const char *prefix, size_t prefix_len, const uint8_t *node,
                             size_t node_len, char *buf, size_t cap);

struct cluster_sess_entry {
	struct st_bytes node;    /* the owner */
	struct st_bytes records; /* the session without its messages */
};

struct cluster_sess_request {
	struct st_bytes node;   /* the asking node */
	struct st_bytes client; /* the client id */
};

struct cluster_sess_answer {
	uint8_t status;          /* CLUSTER_SESS_NONE, _HERE or _ELSEWHERE */
	uint32_t dropped;        /* messages the owner could not fit */
	struct st_bytes records; /* the session (HERE), the node id it went to (ELSEWHERE) */
};

/* The head each encodes before its last field (which the caller appends, or not). */
#define CLUSTER_SESS_ANSWER_HEAD 8
/* Writes the head of an entry (node) / request (node) / answer into buf[0..cap); its size or
 * ST_ERR_NO_SPACE / ST_ERR_PROTOCOL (a node id of 0 or more than CLUSTER_NODE_ID_MAX bytes). */
long cluster_sess_entry_head(const uint8_t *node, size_t len, uint8_t *buf, size_t cap);
long cluster_sess_request_head(const uint8_t *node, size_t len, uint8_t *buf, size_t cap);
long cluster_sess_answer_head(uint8_t status, uint32_t dropped, uint8_t *buf, size_t cap);

/* Reads buf[0..len) (views into buf): ST_OK, ST_ERR_LENGTH or ST_ERR_PROTOCOL. */
int cluster_sess_entry_decode(const uint8_t *buf, size_t len, struct cluster_sess_entry *out);
int cluster_sess_request_decode(const uint8_t *buf, size_t len, struct cluster_sess_request *out);
int cluster_sess_answer_decode(const uint8_t *buf, size_t len, struct cluster_sess_answer *out);

#endif
