/*
 * Access control on the broker's paths: what a session may read and write under the ACL of
 * its listener's security domain (auth/acl.h has the rules), decided so that no delivery walks
 * the rules:
 * - At CONNECT the client's rules are resolved once (patterns substituted) into s->acl.
 * - At SUBSCRIBE the filter is classified: no readable topic -> refused (SUBACK 0x80 / 0x87);
 *   every topic readable -> an ordinary index entry, no check per message; otherwise the entry
 *   carries SUBDATA_ACL and routing asks access_can() for each (session, topic).
 * - access_can() answers from a small per-session cache of recent topics (direct-mapped,
 *   exact: the topic bytes are compared), walking the rules only on a miss. A publisher's
 *   write checks use the same cache, so a client publishing to its few topics walks the rules
 *   once per topic.
 * Without an acl_file s->acl is NULL and no subscription carries SUBDATA_ACL: routing pays
 * nothing, publishing one predictable branch.
 *
 * A session restored from the persistence log gets its identity from the log's session-auth
 * record (persist_replay.c) and is checked as its client would be. One restored from an older
 * log, without that record, has no identity: under an ACL it reads nothing (its
 * subscriptions all carry SUBDATA_ACL, access_can() says no) until its client connects.
 *
 * On SIGHUP (reload.c) each worker rebuilds every session's rules from the new ACL, empties
 * its cache and re-classifies its subscriptions, so old decisions never outlive old rules.
 */
#ifndef STARLING_ACCESS_H
#define STARLING_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/acl.h"

struct worker;
struct session;
struct pub_view;

#define ACCESS_CACHE_SLOTS     16  /* topics remembered per session (power of two) */
#define ACCESS_CACHE_TOPIC_MAX 118 /* longer topics are checked without the cache */

/* One remembered topic. */
struct access_slot {
	uint8_t len;                           /* topic bytes; 0: empty slot */
	uint8_t read;                          /* 0 unknown, 1 denied, 2 allowed */
	uint8_t write;                         /* the same for publishing */
	uint8_t topic[ACCESS_CACHE_TOPIC_MAX]; /* the topic */
};

/* A session's access: its resolved rules and the cache of answers. */
struct access {
	struct acl_client *client; /* rules (owned) */
	struct access_slot *cache; /* ACCESS_CACHE_SLOTS slots, allocated on first use */
};

/*
 * Sets s's identity (user NULL: anonymous; listener: its security domain) and resolves its
 * rules under w's security set; re-classifies its subscriptions when it had any (a resumed
 * session may come back as another user). ST_OK or ST_ERR_NOMEM.
 */
int access_attach(struct worker *w, struct session *s, const uint8_t *user, size_t ulen,
                  unsigned listener);

/* Rebuilds s's rules from its identity under w->auth, and re-classifies its subscriptions. */
int access_refresh(struct worker *w, struct session *s);

/* Whether s may `access` (ACL_READ or ACL_WRITE) v's topic. s->acl must be set. */
bool access_can(struct session *s, struct pub_view *v, unsigned access);

/* The same for a topic without a view (wills, retained messages). */
bool access_can_topic(struct session *s, const uint8_t *t, size_t len, unsigned access);

/*
 * The SUBDATA_ACL bit a new subscription to filter (a "$share/..." key is judged by its
 * filter) takes, or -1 if s may read no topic it matches. 0 when s->acl is NULL.
 */
int64_t access_sub_flag(const struct session *s, const uint8_t *filter, size_t len);

void access_free(struct access *a);

#endif
