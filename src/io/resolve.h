/*
 * Host names to addresses without blocking the loop, for the connections the broker makes
 * (bridges): getaddrinfo may wait seconds on DNS, and a worker's loop must never wait, so a
 * name is looked up on a short-lived thread of its own and the answer arrives as a completion
 * on the worker's ring (the thread writes an eventfd the ring reads), like every other event
 * of the loop. A numeric address (IPv4, or IPv6 without brackets) needs no lookup and is
 * answered at once, with no thread.
 *
 * Ownership: the owner embeds a struct resolve (which holds the answer); the lookup's own
 * state (struct resolve_job) is allocated and shared by the thread and the ring's read,
 * freed by whichever of the two finishes last. So the owner may abandon a lookup at any time
 * (resolve_cancel) and free its struct resolve at once: the thread then writes only into the
 * job, and the job's completion finds no owner to call.
 *
 * Workload: a lookup per connection attempt of a bridge, a few per minute at most; a thread
 * per lookup costs less than keeping one waiting. The number of lookups in flight is bounded
 * by their owners (one per bridge).
 */
#ifndef STARLING_RESOLVE_H
#define STARLING_RESOLVE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ring.h"

#define RESOLVE_ADDRS_MAX 8   /* addresses kept of one answer, in getaddrinfo's order */
#define RESOLVE_HOST_MAX  256 /* a host name and its NUL */

/* One address of an answer, ready for socket() and ring_connect(). */
struct resolve_addr {
	struct sockaddr_storage sa; /* sockaddr_in or sockaddr_in6, with the port */
	socklen_t len;              /* bytes of sa in use */
	int family;                 /* AF_INET or AF_INET6 */
};

struct resolve;
struct resolve_job;

/*
 * The answer arrived (in a ring completion): status 0 and rs->addrs/rs->count filled, or a
 * getaddrinfo error (EAI_*, resolve_strerror names it). rs is no longer pending; the callback
 * may start another lookup with it, or free it.
 */
typedef void (*resolve_fn)(struct resolve *rs, int status);

/* The owner's side of a lookup, embedded in the owner. */
struct resolve {
	struct resolve_job *job; /* the lookup in flight; NULL: none */
	resolve_fn fn;           /* called when it ends (not after resolve_cancel) */
	void *arg;               /* the owner's, for fn */
	int sys_errno;           /* the errno of an EAI_SYSTEM status */
	unsigned count;          /* addresses in addrs */
	struct resolve_addr addrs[RESOLVE_ADDRS_MAX];
};

/* A numeric answer (addrs filled, fn not called); RESOLVE_PENDING: fn will be called. */
#define RESOLVE_PENDING 1

/*
 * Resolves host (a name, or an IPv4 or IPv6 address without brackets) for a TCP connection
 * to port, both address families. A numeric host is answered here: returns 0 with rs->addrs
 * filled, or an EAI_* error. A name starts a lookup (rs must not have one pending) and
 * returns RESOLVE_PENDING: fn(rs, status) then runs from a completion on r, the ring of the
 * calling thread, unless resolve_cancel comes first. EAI_MEMORY or EAI_SYSTEM (errno set)
 * (rs->sys_errno) when the lookup cannot be started. host is copied.
 */
int resolve_start(struct resolve *rs, struct ring *r, const char *host, uint16_t port,
                  resolve_fn fn, void *arg);

/* A lookup is in flight (fn has not run yet). */
static inline bool resolve_is_pending(const struct resolve *rs)
{
	return rs->job != NULL;
}

/*
 * Abandons the lookup in flight, if any: fn will not be called, and rs may be freed as soon
 * as this returns. The thread runs on to the end of its getaddrinfo (which cannot be
 * interrupted) and its job is freed then. r is the ring the lookup was started on; the job's
 * read ends in a later batch of r (-ECANCELED), so a loop that is shutting down reaps once
 * more before ring_exit (a worker's drain does), or that job is never freed.
 */
void resolve_cancel(struct resolve *rs, struct ring *r);

/* The sentence for a status of rs's fn or resolve_start (EAI_SYSTEM: rs->sys_errno's). */
const char *resolve_strerror(const struct resolve *rs, int status);

/* "192.0.2.1" or "2001:db8::1": writes a's address (no port) into out (cap >= 46 bytes). */
const char *resolve_addr_str(const struct resolve_addr *a, char *out, size_t cap);

#endif
