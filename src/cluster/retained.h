/*
 * The cluster's retained messages in a JetStream key-value bucket (issue 14): the pure pieces,
 * without libnats. One bucket per cluster_name holds every retained message of the cluster;
 * its key is the topic's subject without the "<cluster_name>." prefix ("m.a.b", "d.=24foo"),
 * whose tokens are valid KV keys already (subject.h), and its value the envelope a PUBLISH
 * carries between nodes (envelope.h). src/broker/cluster_retain.c drives the bucket.
 */
#ifndef STARLING_CLUSTER_RETAINED_H
#define STARLING_CLUSTER_RETAINED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "retained-" and the longest cluster_name, every byte of it doubled, and a NUL. */
#define CLUSTER_BUCKET_MAX (9 + 2 * 64 + 1)

/*
 * The bucket of a cluster_name (valid per cluster_name_is_valid: tokens of [A-Za-z0-9_-]
 * joined by dots). Bucket names are [A-Za-z0-9_-] only, so the name is escaped: '_' becomes
 * "__" and '.' becomes "_-", which keeps the mapping injective ("a.b", "a_b" and "a-b" get
 * three buckets) and readable ("starling" -> "retained-starling"). Writes it and a NUL into
 * buf[0..cap) and returns its length, or -1 if it does not fit or name holds another byte.
 */
long cluster_retained_bucket(const char *name, size_t len, char *buf, size_t cap);

/*
 * What is left, in milliseconds, of a retained message's Message Expiry Interval when a node
 * reads it from the bucket: the envelope says expiry_s seconds were left when it was written,
 * the entry was created at created_ns and it is now now_ns (both nanoseconds of UTC, from the
 * NATS server and this host). 0: it never expires (expiry_s 0). -1: it expired already. A
 * created time in the future (clocks apart) counts as now: the interval is not lengthened.
 */
int64_t cluster_retained_left_ms(uint32_t expiry_s, int64_t created_ns, int64_t now_ns);

#endif
