/*
 * Access control lists in Mosquitto's acl_file format, with Mosquitto 2.0.11's meaning (read
 * in its source, src/security_default.c, and checked against the broker):
 *   topic [read|write|readwrite|deny] FILTER   before any `user` line: anonymous clients'
 *   user NAME                                   the `topic` lines after it are NAME's
 *   pattern [read|write|readwrite|deny] FILTER  every client's, %c -> client id, %u -> user
 * Blank lines and lines starting with '#' are skipped; no access word means readwrite; FILTER
 * is the rest of the line (it may hold blanks). A client with a user name but no `user` block
 * has no topic rules, only patterns. A check walks two tiers: the client's topic rules, then
 * the patterns; in each, a matching deny denies, else a matching rule granting the access
 * allows, else the next tier decides; past the last, access is denied. Patterns mentioning %u
 * are skipped for a client without a user name, and when patterns exist a client whose id or
 * user name holds '+' or '#' gets no pattern access at all (it could widen its own rules).
 * '$' topics need rules that start with '$' (the usual matching rule [MQTT-4.7.2-1]).
 *
 * Speed: the broker never walks rules per delivery. acl_client_new() resolves a client's
 * rules once per CONNECT (patterns substituted); acl_classify() decides a subscription at
 * SUBSCRIBE time: every topic it can match readable (ACL_ALL: no check per message), none
 * (ACL_NONE: the SUBSCRIBE is refused), or some (ACL_SOME: topics are checked, and the broker
 * caches each answer). The classification is exact where a rule covers the filter or no rule
 * touches it, and answers ACL_SOME otherwise, which costs speed, never correctness.
 */
#ifndef STARLING_AUTH_ACL_H
#define STARLING_AUTH_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum acl_access {
	ACL_DENY = 0,  /* `deny`: matching topics are refused whatever else says */
	ACL_READ = 1,  /* receive (subscribe and deliveries) */
	ACL_WRITE = 2, /* publish (and wills) */
};

enum acl_class {
	ACL_NONE = 0, /* no topic the filter matches is readable */
	ACL_SOME = 1, /* some may be: check each topic */
	ACL_ALL = 2,  /* every topic the filter matches is readable */
};

/* One rule: a filter and the access it grants (ACL_READ | ACL_WRITE bits, or ACL_DENY). */
struct acl_rule {
	uint8_t *filter; /* owned; valid topic filter (patterns: before substitution) */
	uint16_t len;    /* bytes */
	uint8_t access;  /* enum acl_access bits */
	bool uses_user;  /* pattern mentions %u */
	bool uses_id;    /* pattern mentions %c */
};

/* A list of rules, kept with the denies first (their order does not change the answer). */
struct acl_list {
	struct acl_rule *rules; /* entries */
	uint32_t n;             /* used */
	uint32_t cap;           /* allocated */
};

struct acl_user {
	char *name;           /* owned, NUL-terminated */
	size_t len;           /* bytes of name */
	struct acl_list list; /* the user's topic rules */
};

/* A parsed acl_file. Immutable once loaded. */
struct acl {
	struct acl_list anon;    /* topic rules before any `user` line */
	struct acl_user *users;  /* sorted by (len, name) */
	size_t nusers;           /* entries */
	struct acl_list pattern; /* pattern rules, for everyone */
};

/* Loads an acl_file; errors name "FILE:LINE: reason". *out: a new struct the caller frees. */
int acl_load(const char *path, struct acl **out, char *err, size_t errlen);
int acl_parse(const char *path, const char *text, size_t len, struct acl **out, char *err,
              size_t errlen);
void acl_free(struct acl *acl);

/* The topic rules of user (NULL: anonymous), or NULL when it has none. */
const struct acl_list *acl_user_rules(const struct acl *acl, const uint8_t *user, size_t len);

/* A client's rules, resolved at CONNECT: its topic rules and the patterns substituted. */
struct acl_client {
	struct acl_list tier[2]; /* [0] topic rules (copies), [1] substituted patterns */
};

/* Resolves the rules for a client (user NULL: anonymous). NULL when out of memory. */
struct acl_client *acl_client_new(const struct acl *acl, const uint8_t *user, size_t ulen,
                                  const uint8_t *id, size_t idlen);
void acl_client_free(struct acl_client *c);

/* Whether the client may `access` (ACL_READ or ACL_WRITE) topic name t. Walks the rules. */
bool acl_check(const struct acl_client *c, const uint8_t *t, size_t len, unsigned access);

/* How much of filter f (valid, not "$share/...") the client may read. */
enum acl_class acl_classify(const struct acl_client *c, const uint8_t *f, size_t len);

/* Filter relations, exposed for the unit tests: whether every topic f matches, a matches
 * too; whether some topic matches both. */
bool acl_filter_covers(const uint8_t *a, size_t alen, const uint8_t *f, size_t flen);
bool acl_filter_intersects(const uint8_t *a, size_t alen, const uint8_t *f, size_t flen);

#endif
