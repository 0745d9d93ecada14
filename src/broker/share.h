/*
 * MQTT 5 shared subscriptions ($share/{ShareName}/{filter}, MQTT 5.0 section 4.8.2).
 *
 * A group is one subscriber of the subscription index for its filter (the index entry's data
 * has SUBDATA_SHARED set and its subscriber pointer is the group), so matching a publish costs
 * the same whether a filter has one shared group or a thousand plain subscribers. Each
 * message a group matches goes to one member, chosen round robin among the members that are
 * connected; when none is, to the next member (a persistent session then queues QoS 1/2).
 *
 * Groups are reference counted: the registry (and index) hold one reference while the group
 * has members, and every queued or inflight delivery that came through the group holds one,
 * so that a member that leaves can hand its unacknowledged messages to another member.
 *
 * With several workers a group lives on one, its owner (the home worker of its key), and only
 * the owner's index holds it. Members on other workers are remote: the owner knows them by
 * worker and session generation, and whether they are online as they last reported (xw.h).
 * Other workers may hold references to a group (deliveries in their sessions); they touch
 * only the reference count (atomic) and the owner field, never the member list.
 */
#ifndef STARLING_SHARE_H
#define STARLING_SHARE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/hmap.h"
#include "starling/codec.h"

struct session;
struct subidx;
struct interest_local;

/* A member, or the identity of one: a local session, or (worker, gen) of a remote one. */
struct share_member {
	struct session *s; /* local member session, borrowed (it leaves before it is freed) */
	uint64_t data;     /* the member's subscription data (granted QoS, options, identifier) */
	uint64_t gen;      /* remote: the session's generation on its worker */
	uint16_t worker;   /* remote: the member's worker */
	bool online;       /* remote: connected, as it last reported */
};

struct share_group {
	_Atomic uint32_t refs;        /* registry + deliveries, on any worker */
	uint16_t owner;               /* the worker whose registry and index hold the group */
	uint8_t *key;                 /* "$share/name/filter", owned */
	uint16_t key_len;             /* bytes of key */
	uint16_t filter_off;          /* the filter starts at key + filter_off */
	struct share_member *members; /* in join order */
	uint32_t nmembers;            /* entries used */
	uint32_t cap;                 /* entries allocated */
	uint32_t next;                /* round-robin cursor */
	/* Cluster-wide (cluster.h): NATS's queue group picks the node of each message, which
	 * reaches the group through route_group only; local routing passes it by. */
	bool clustered;
};

/* The registry of groups of one worker: key -> group. */
struct share_registry {
	struct hmap groups;              /* by XXH3 of the key */
	uint64_t seed;                   /* hash seed */
	uint16_t owner;                  /* the worker of this registry */
	struct interest_local *interest; /* counts the groups' filters; NULL with one worker */
	struct worker *cluster;          /* tells the cluster the groups' filters; NULL: none */
};

/*
 * Recognises a shared subscription filter. Returns 0 if `f` is not one (does not start with
 * "$share/"), 1 with *filter set to the filter part if it is a valid one, ST_ERR_FILTER if it
 * starts with "$share/" but has no share name, a share name with '+', '#' (or '/'), or no
 * filter [MQTT-4.8.2-1], [MQTT-4.8.2-2].
 */
int share_parse(const uint8_t *f, size_t len, struct st_bytes *filter);

/*
 * Adds member m (copied) to the group of the shared filter `key` (share_parse() said 1),
 * creating the group and its index entry if needed; an existing member gets m's data.
 * *added says whether m was not a member before. Returns ST_OK or ST_ERR_NOMEM.
 */
int share_subscribe(struct share_registry *reg, struct subidx *idx, const uint8_t *key, size_t len,
                    const struct share_member *m, bool *added);

/* Removes member `who`; the group leaves the index with its last member. ST_OK or
 * ST_ERR_FILTER if it was not a member. */
int share_unsubscribe(struct share_registry *reg, struct subidx *idx, const uint8_t *key,
                      size_t len, const struct share_member *who);

/* A remote member reports being on- or offline (unknown groups and members are ignored). */
void share_set_online(struct share_registry *reg, const uint8_t *key, size_t len,
                      const struct share_member *who, bool online);

/*
 * The member to deliver the next message to (round robin over connected members; an offline
 * one when none is connected), never `except` (may be NULL); NULL if there is none.
 */
struct share_member *share_pick(struct share_group *g, const struct share_member *except);

/* The group of key in reg, or NULL. */
struct share_group *share_find(struct share_registry *reg, const uint8_t *key, size_t len);

void share_group_ref(struct share_group *g);
void share_group_unref(struct share_group *g);

/* Drops every group (at shutdown, after every session left). */
void share_registry_fini(struct share_registry *reg, struct subidx *idx);

#endif
