/*
 * The security in force: for each "domain" (the whole broker, or each listener with
 * per_listener_settings true) the password database, the access rules and whether anonymous
 * clients may connect. Built from the configuration by auth_set_load() (at start-up and on
 * SIGHUP) and immutable afterwards, so that every worker reads one without a lock; the broker
 * layer publishes a new one and retires the old (broker/reload.c says how).
 */
#ifndef STARLING_AUTH_H
#define STARLING_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"

struct auth_pw;
struct acl;
struct auth_psk;

/* One listener's (or the broker's) security. */
struct auth_domain {
	struct auth_pw *pw;   /* password_file's users, or NULL: none configured */
	struct acl *acl;      /* acl_file's rules, or NULL: every client may do everything */
	struct auth_psk *psk; /* psk_file's identities and keys (psk.h), or NULL: none */
	bool allow_anonymous; /* clients without a user name may connect */
};

struct auth_set {
	struct auth_domain *domains; /* one, or one per listener (per_listener_settings) */
	unsigned ndomains;           /* entries in domains */
	bool per_listener;           /* domains[i] is listener i's */
	bool any_acl;                /* some domain has an acl_file */
	uint64_t gen;                /* 1 for the first set, one more per reload */
};

/* What CONNECT's credentials earn. */
enum auth_verdict {
	AUTH_ACCEPT = 0,      /* connect */
	AUTH_BAD_CREDENTIALS, /* unknown user or wrong password: 3.x 0x05, MQTT 5 0x86 */
	AUTH_NOT_AUTHORIZED,  /* anonymous where not allowed: 3.x 0x05, MQTT 5 0x87 */
};

/*
 * Loads every file the configuration names (cfg borrowed, after config_finish). Returns 0, or
 * ST_ERR_CONFIG / ST_ERR_NOMEM with the reason, naming the file and line, in err.
 */
int auth_set_load(const struct config *cfg, struct auth_set **out, char *err, size_t errlen);

void auth_set_free(struct auth_set *set);

/* The domain of the connection accepted on config listener `listener`. */
static inline const struct auth_domain *auth_domain_of(const struct auth_set *set,
                                                       unsigned listener)
{
	return &set->domains[set->per_listener && listener < set->ndomains ? listener : 0];
}

/*
 * Judges CONNECT's user name and password (NULL user: none given; a password without a user
 * name, which MQTT 5 allows, makes an anonymous client, as in Mosquitto). Costs one password
 * hash when a password file is configured and a user name given.
 */
enum auth_verdict auth_connect(const struct auth_domain *d, const uint8_t *user, size_t ulen,
                               const uint8_t *pw, size_t pwlen, bool has_pw);

/*
 * A tag of user's password-file entry in d (its hash kind, rounds, salt and hash), or 0 when d
 * has no password file or no such user. A connection accepted by the file keeps the tag of
 * its entry; on SIGHUP it stays if the new file's entry has the same tag, and is closed if the
 * entry changed or went (as Mosquitto 2 closes clients whose password no longer matches; the
 * password itself is not kept to be checked again, so a user re-hashed with the same password
 * is closed too and reconnects).
 */
uint64_t auth_pw_tag(const struct auth_domain *d, const uint8_t *user, size_t ulen);

#endif
