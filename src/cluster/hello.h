/*
 * A node's word to the others that a client connected to it: the cluster keeps a client id
 * connected at most once, as one broker does [MQTT-3.1.4-3]. Every node hears every
 * announcement (one NATS subject, `<cluster>.s.c`); a node holding that client id connected
 * since an earlier moment closes its connection (MQTT 5: DISCONNECT 0x8E, Session taken over).
 * Two connects at once are ordered by time, then by node id, so exactly one survives.
 *
 * Layout (version 1), integers big-endian:
 *   0  0xC0 0x48        magic ("H" for hello; 0xC0 never occurs in UTF-8 text)
 *   2  1                version
 *   3  n                node id length, 1..CLUSTER_NODE_ID_MAX
 *   4  id[n]            the node the client connected to
 *      epoch[4]         that node's incarnation
 *      since[8]         when the client connected, nanoseconds of the node's wall clock
 *      len[2]           client id length (0..65535; MQTT allows an empty one only when the
 *                       server assigns one, which is never empty)
 *      client[len]      the client id
 */
#ifndef STARLING_CLUSTER_HELLO_H
#define STARLING_CLUSTER_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "starling/codec.h"

struct cluster_hello {
	struct st_bytes node;   /* the node's id */
	uint32_t epoch;         /* its incarnation */
	uint64_t since_ns;      /* when the client connected there (wall clock) */
	struct st_bytes client; /* the client id */
};

/* Bytes cluster_hello_encode writes for h. */
size_t cluster_hello_size(const struct cluster_hello *h);

/* Writes h into buf[0..cap); its size, ST_ERR_NO_SPACE, or ST_ERR_PROTOCOL (a bad node id). */
long cluster_hello_encode(const struct cluster_hello *h, uint8_t *buf, size_t cap);

/* Reads buf[0..len) into *out (views into buf): ST_OK, ST_ERR_LENGTH, ST_ERR_PROTOCOL. */
int cluster_hello_decode(const uint8_t *buf, size_t len, struct cluster_hello *out);

/*
 * Whether a connection made at since_ns on node `here` must give way to the client's
 * connection announced by h: the later connect wins; at the same nanosecond, the greater node
 * id (byte order), so that one side closes and not both.
 */
bool cluster_hello_wins(const struct cluster_hello *h, uint64_t since_ns, const uint8_t *here,
                        size_t here_len);

#endif
