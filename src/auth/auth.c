/*
 * Building the security in force from the configuration, and judging CONNECT's credentials,
 * with Mosquitto 2.0's rules (checked against mosquitto 2.0.11):
 * - no user name: accepted if allow_anonymous, else refused (not authorised);
 * - a user name with a password_file: the user must be in it and the password must match;
 * - a user name without a password_file: accepted if allow_anonymous, else refused.
 * Mosquitto answers every refusal with 0x87 (Not authorized) in MQTT 5; Starling answers
 * wrong credentials with 0x86 (Bad User Name or Password), which the specification names
 * for them, and anonymous refusals with 0x87.
 */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "acl.h"
#include "passwd.h"
#include "psk.h"
#include "starling/error.h"

/* Loads one domain's files. */
static int auth_domain_load(struct auth_domain *d, const struct config_auth *a, char *err,
                            size_t errlen)
{
	int rc = ST_OK;

	d->allow_anonymous = a->allow_anonymous;
	if (a->password_file[0])
		rc = auth_pw_load(a->password_file, &d->pw, err, errlen);
	if (rc == ST_OK && a->acl_file[0])
		rc = acl_load(a->acl_file, &d->acl, err, errlen);
	if (rc == ST_OK && a->psk_file[0])
		rc = auth_psk_load(a->psk_file, &d->psk, err, errlen);
	return rc;
}

int auth_set_load(const struct config *cfg, struct auth_set **out, char *err, size_t errlen)
{
	struct auth_set *set = calloc(1, sizeof(*set));
	int rc = ST_OK;

	if (!set)
		return ST_ERR_NOMEM;
	set->per_listener = cfg->per_listener_settings;
	set->ndomains = set->per_listener && cfg->listener_count ? cfg->listener_count : 1;
	set->domains = calloc(set->ndomains, sizeof(*set->domains));
	set->gen = 1;
	if (!set->domains) {
		free(set);
		return ST_ERR_NOMEM;
	}
	for (unsigned i = 0; i < set->ndomains && rc == ST_OK; i++) {
		struct config_auth global = {.allow_anonymous = cfg->allow_anonymous};
		const struct config_auth *a = &global;

		if (set->per_listener) {
			a = &cfg->listeners[i].auth;
		} else {
			memcpy(global.password_file, cfg->password_file,
			       sizeof(global.password_file));
			memcpy(global.acl_file, cfg->acl_file, sizeof(global.acl_file));
			memcpy(global.psk_file, cfg->psk_file, sizeof(global.psk_file));
		}
		rc = auth_domain_load(&set->domains[i], a, err, errlen);
		set->any_acl |= set->domains[i].acl != NULL;
	}
	if (rc != ST_OK) {
		auth_set_free(set);
		return rc;
	}
	*out = set;
	return ST_OK;
}

void auth_set_free(struct auth_set *set)
{
	if (!set)
		return;
	for (unsigned i = 0; i < set->ndomains; i++) {
		auth_pw_free(set->domains[i].pw);
		acl_free(set->domains[i].acl);
		auth_psk_free(set->domains[i].psk);
	}
	free(set->domains);
	free(set);
}

enum auth_verdict auth_connect(const struct auth_domain *d, const uint8_t *user, size_t ulen,
                               const uint8_t *pw, size_t pwlen, bool has_pw)
{
	if (!user)
		return d->allow_anonymous ? AUTH_ACCEPT : AUTH_NOT_AUTHORIZED;
	if (!d->pw)
		return d->allow_anonymous ? AUTH_ACCEPT : AUTH_NOT_AUTHORIZED;
	/* A user in the file without a password in CONNECT cannot match its hash. */
	if (!has_pw || !auth_pw_check(d->pw, user, ulen, pw, pwlen))
		return AUTH_BAD_CREDENTIALS;
	return AUTH_ACCEPT;
}

uint64_t auth_pw_tag(const struct auth_domain *d, const uint8_t *user, size_t ulen)
{
	const struct auth_pw_entry *e = d->pw ? auth_pw_find(d->pw, user, ulen) : NULL;
	uint8_t buf[3 * sizeof(uint32_t) + AUTH_PW_SALT_MAX + AUTH_PW_HASH_LEN];
	uint32_t head[3];
	uint64_t tag;

	if (!e)
		return 0;
	head[0] = (uint32_t)e->kind;
	head[1] = e->iterations;
	head[2] = e->salt_len;
	memcpy(buf, head, sizeof(head));
	memcpy(buf + sizeof(head), e->salt, e->salt_len);
	memcpy(buf + sizeof(head) + e->salt_len, e->hash, sizeof(e->hash));
	tag = XXH3_64bits(buf, sizeof(head) + e->salt_len + sizeof(e->hash));
	return tag ? tag : 1;
}
