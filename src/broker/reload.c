/*
 * The SIGHUP reload steps and the hand-over of a new auth set to the workers (reload.h).
 */
#include "reload.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "access.h"
#include "auth/auth.h"
#include "base/log.h"
#include "broker.h"
#include "conn.h"
#include "out.h"
#include "session.h"
#include "starling/props.h"
#include "worker.h"
#include "xw.h"

/* One step of a reload: returns ST_OK, or an error after logging why the old state stays. */
struct reload_step {
	const char *what;             /* for the log */
	int (*run)(struct worker *w); /* the step, on worker 0 */
};

static int reload_log_file(struct worker *w)
{
	struct broker *b = w->b;

	if (log_reopen(&b->log, &b->cfg) != ST_OK) {
		log_msg(&w->log, LOG_T_ERROR, "Error: reload: cannot reopen the log file: %s.",
		        strerror(errno));
		return ST_ERR_SYS;
	}
	return ST_OK;
}

/* Whether c's password-file entry is gone or changed in w->auth (auth_pw_tag). */
static bool reload_revoked(struct worker *w, const struct conn *c)
{
	const struct auth_domain *d = auth_domain_of(w->auth, c->listener);

	return c->pw_tag && c->username &&
	       auth_pw_tag(d, (const uint8_t *)c->username, c->username_len) != c->pw_tag;
}

/*
 * Every session of w under w->auth: a client whose password no longer stands is closed (at
 * the end of the batch: closing ends a clean session, which this walk must not see), the
 * others' rules rebuilt, cached answers dropped, subscriptions re-classified.
 */
static void reload_sessions(struct worker *w)
{
	for (size_t i = hmap_next(&w->sessions, 0); i < hmap_cap(&w->sessions);
	     i = hmap_next(&w->sessions, i + 1)) {
		struct session *s = w->sessions.slots[i].val;

		if (s->conn && reload_revoked(w, s->conn)) {
			log_msg(&w->log, LOG_T_NOTICE,
			        "Client %.*s (user %s) closed: its password file entry changed on "
			        "reload.",
			        (int)s->client_id_len, (const char *)s->client_id,
			        s->conn->username);
			out_disconnect(s->conn, ST_RC_NOT_AUTHORIZED, "password changed");
			conn_close_later(s->conn, "password changed");
		}

		if (access_refresh(w, s) != ST_OK)
			log_msg(&w->log, LOG_T_ERROR,
			        "Error: out of memory applying the new ACL to %.*s.",
			        (int)s->client_id_len, (const char *)s->client_id);
	}
}

static int reload_auth(struct worker *w)
{
	struct broker_shared *sh = &w->b->shared;
	struct auth_set *next = NULL, *old = (struct auth_set *)w->auth;
	char err[1024];
	int ret;

	if (sh->auth_retired) {
		/* The last set is still being handed over: this reload runs once it is. */
		w->reload_waiting = true;
		return ST_OK;
	}
	ret = auth_set_load(&w->b->cfg, &next, err, sizeof(err));
	if (ret != ST_OK) {
		log_msg(&w->log, LOG_T_ERROR, "Error: reload: %s; the old rules stay in force.",
		        err);
		return ret;
	}
	next->gen = old->gen + 1;
	if (w->nworkers == 1) {
		w->auth = next;
		atomic_store_explicit(&sh->auth, next, memory_order_release);
		reload_sessions(w);
		auth_set_free(old);
	} else {
		sh->auth_retired = old;
		atomic_store_explicit(&sh->auth_pending, w->nworkers, memory_order_relaxed);
		atomic_store_explicit(&sh->auth, next, memory_order_release);
		reload_adopt(w);
		xw_wake_all(w);
	}
	log_msg(&w->log, LOG_T_NOTICE, "Reloaded the password and ACL files (generation %llu).",
	        (unsigned long long)next->gen);
	return ST_OK;
}

/* Each TLS listener's certificate, key, CAs and CRL, for the connections made from now on
 * (broker_tls_reload logs each listener's outcome; a broken one keeps its old context). */
static int reload_tls(struct worker *w)
{
	return broker_tls_reload(w->b);
}

/* In order. */
static const struct reload_step reload_steps[] = {
        {"log file", reload_log_file},
        {"password and ACL files", reload_auth},
        {"TLS certificates", reload_tls},
};

void reload_run(struct worker *w)
{
	unsigned failed = 0;

	log_msg(&w->log, LOG_T_NOTICE, "Reloading on SIGHUP.");
	for (size_t i = 0; i < sizeof(reload_steps) / sizeof(reload_steps[0]); i++)
		if (reload_steps[i].run(w) != ST_OK) {
			failed++;
			log_msg(&w->log, LOG_T_WARNING, "Warning: reload: the %s step failed.",
			        reload_steps[i].what);
		}
	if (failed == 0)
		log_msg(&w->log, LOG_T_INFORMATION, "Reload complete.");
}

void reload_adopt(struct worker *w)
{
	struct broker_shared *sh = &w->b->shared;
	const struct auth_set *cur;

	if (atomic_load_explicit(&sh->auth, memory_order_relaxed) == w->auth)
		return;
	cur = atomic_load_explicit(&sh->auth, memory_order_acquire);
	w->auth = cur;
	reload_sessions(w);
	atomic_fetch_sub_explicit(&sh->auth_pending, 1, memory_order_release);
}

void reload_housekeeping(struct worker *w)
{
	struct broker_shared *sh = &w->b->shared;

	if (!sh->auth_retired || atomic_load_explicit(&sh->auth_pending, memory_order_acquire))
		return;
	auth_set_free(sh->auth_retired);
	sh->auth_retired = NULL;
	if (w->reload_waiting) {
		w->reload_waiting = false;
		reload_auth(w);
	}
}
