/*
 * MQTT topics <-> NATS subjects for a Starling cluster (issue 14). A node publishes every local
 * PUBLISH once on the subject of its topic and subscribes to the subjects of its clients'
 * filters, so that NATS carries a message only to the nodes that want it. No allocation: the
 * per-message calls write into the caller's buffer.
 *
 * Layout: "<cluster>.<kind>.<level>.<level>...", one token per MQTT level, where <cluster> is
 * cluster_name (tokens of [A-Za-z0-9_-], default "starling") and <kind> is "d" when the first
 * level starts with '$' and "m" otherwise. The kind token is what keeps MQTT's rule that a
 * filter starting with '+' or '#' does not match a '$' topic [MQTT-4.7.2-1]: NATS's '*' and
 * '>' match any token, so such filters map under "m" only.
 *
 * A level becomes a token by keeping the bytes [A-Za-z0-9_-] and writing every other byte as
 * '=' and two upper-case hex digits ("a.b" -> "a=2Eb", "$SYS" -> "=24SYS"); the empty level
 * becomes "=" alone, which no escaped non-empty level can be. So tokens are never empty and
 * never hold '.', '*', '>', whitespace, NUL or non-ASCII bytes: valid for any NATS server or
 * client, and valid JetStream key-value keys too (nats.c 3.4 takes [A-Za-z0-9_=/\\-] and '.'),
 * so the retained messages' bucket can key by the same tokens. The escape is injective per
 * level and levels are tokens, hence topic -> subject is injective and literal levels match
 * exactly when their tokens are equal.
 *
 * Filters: '+' becomes '*'; a final '#' becomes '>', and because MQTT's "a/#" also matches "a"
 * (the parent level) while NATS's "a.>" needs one more token, such a filter needs a second
 * subscription on the parent subject ("a"): cluster_subjects_of_filter says so through
 * *parent_len. "#" alone has no parent (no topic has zero levels). With that, a topic matches
 * a filter in MQTT iff the topic's subject matches one of the filter's subjects in NATS.
 *
 * $SYS stays per node: a topic or filter whose first level is "$SYS" maps to nothing
 * (CLUSTER_MAP_LOCAL), and a subject that would decode to one is refused. Other '$' topics are
 * clustered under "d".
 *
 * Length: nats-server closes a client whose protocol line (HPUB's subject, reply and sizes)
 * exceeds max_control_line, 4096 bytes by default; subjects are kept to CLUSTER_SUBJECT_MAX so
 * that a reply subject and the sizes fit beside them. An MQTT topic may be 65,535 bytes, so a
 * long one (or a short one of escaped bytes: each costs three) gets CLUSTER_MAP_TOO_LONG: the
 * caller keeps it on its node and counts it.
 */
#ifndef STARLING_CLUSTER_SUBJECT_H
#define STARLING_CLUSTER_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest subject written or accepted, NUL not counted (4096 - room for reply and sizes). */
#define CLUSTER_SUBJECT_MAX 3840
/* Longest cluster_name. */
#define CLUSTER_NAME_MAX 64
/* The default cluster_name. */
#define CLUSTER_NAME_DEFAULT "starling"

/* Results of the mappings besides a length. */
enum {
	CLUSTER_MAP_LOCAL = -1,    /* a $SYS topic or filter: it stays on its node */
	CLUSTER_MAP_TOO_LONG = -2, /* the result exceeds the buffer or CLUSTER_SUBJECT_MAX */
	CLUSTER_MAP_INVALID = -3,  /* not a valid topic, filter, share or subject of this cluster */
};

/* A validated cluster_name with the '.' that follows it in every subject. */
struct cluster_prefix {
	char str[CLUSTER_NAME_MAX + 2]; /* "<cluster_name>." NUL-terminated */
	uint8_t len;                    /* strlen(str) */
};

/*
 * A cluster_name is one or more tokens of [A-Za-z0-9_-] joined by single dots, at most
 * CLUSTER_NAME_MAX bytes ("starling", "acme.prod"); NATS's own subjects start with '$' or '_'
 * ("$JS", "_INBOX"), so a name must not start with '_' either.
 */
bool cluster_name_is_valid(const char *name, size_t len);

/* Fills p from a name; returns 0, or CLUSTER_MAP_INVALID if !cluster_name_is_valid. */
int cluster_prefix_init(struct cluster_prefix *p, const char *name, size_t len);

/*
 * The subject of a topic name (borrowed, len bytes, need not be NUL-terminated): writes it and a
 * NUL into buf[0..cap) and returns its length, or CLUSTER_MAP_LOCAL ($SYS),
 * CLUSTER_MAP_INVALID (not a valid topic name), CLUSTER_MAP_TOO_LONG. UTF-8 is not checked
 * here (the codec did); every byte has an escape.
 */
long cluster_subject_of_topic(const struct cluster_prefix *p, const uint8_t *topic, size_t len,
                              char *buf, size_t cap);

/*
 * The topic of a subject received from NATS (borrowed, need not be NUL-terminated): writes it
 * into buf[0..cap) without a NUL and returns its length, or CLUSTER_MAP_INVALID when the
 * subject is not one that cluster_subject_of_topic writes for this prefix (another prefix, an
 * unknown kind, an empty token, a byte that should have been escaped, an escape that need not
 * be or is not upper-case hex, a kind that disagrees with the first level, a "$SYS" level, a
 * topic that is no valid MQTT topic name or not UTF-8 without NUL), or CLUSTER_MAP_TOO_LONG.
 * Accepting only the canonical form keeps the mapping a bijection between topics and the
 * subjects accepted.
 */
long cluster_topic_of_subject(const struct cluster_prefix *p, const char *subject, size_t len,
                              uint8_t *buf, size_t cap);

/*
 * The subscription subjects of a topic filter (borrowed, not shared): writes the first and a
 * NUL into buf[0..cap) and returns its length. When the filter ends in "/#", *parent_len is
 * the length of the second subject, which is buf[0..*parent_len): the first without its
 * final ".>"; otherwise it is 0. Errors as cluster_subject_of_topic (CLUSTER_MAP_INVALID: not
 * a valid filter).
 */
long cluster_subjects_of_filter(const struct cluster_prefix *p, const uint8_t *filter, size_t len,
                                char *buf, size_t cap, size_t *parent_len);

/*
 * A shared subscription "$share/GROUP/FILTER": NATS's queue groups give each message to one
 * member of a group per queue name, and nats-server merges queue subscriptions of one name
 * across subjects, so the queue name must name the MQTT shared subscription (group and
 * filter), not the group alone: it is the group's token, '.', and the filter's subject
 * without the cluster prefix ("g.m.a.*.>"). Writes the queue name and a NUL into
 * queue[0..queue_cap), its length into *queue_len, and the subjects as
 * cluster_subjects_of_filter. CLUSTER_MAP_INVALID: no "$share/", an empty group, a group with
 * '+' or '#', an invalid filter.
 */
long cluster_subjects_of_share(const struct cluster_prefix *p, const uint8_t *share, size_t len,
                               char *queue, size_t queue_cap, size_t *queue_len, char *buf,
                               size_t cap, size_t *parent_len);

#endif
