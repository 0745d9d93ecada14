/*
 * --persistent (opts.h): the clean connects around a run. With persistent sessions a broker
 * keeps what a client id subscribed to and what was queued for it after the run ends, so that
 * a later run reusing the id (a fixed --id-prefix, or a reused pid) would inherit subscriptions
 * and messages that are not its own, and a broker with persistence would carry them into its
 * next start. Before the run every client id connects once with a clean session (3.1.1 clean
 * session 1, 5.0 clean start with no session expiry), which discards whatever the broker held
 * for it; after the run the same again, which discards what the run left.
 *
 * These connects are outside the measured phases and few (one per client), so they are plain
 * blocking sockets, BENCH_CLEAN_BATCH at a time: connect and CONNECT each, read each CONNACK,
 * DISCONNECT each and wait for the broker's close, which says the session is gone. Every socket
 * call is bounded by what is left of BENCH_CLEAN_BUDGET_MS.
 */
#include "bench.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "starling/codec.h"

#define BENCH_CLEAN_BATCH 64u

struct clean_run {
	const struct bench_shared *sh;
	uint64_t deadline_ns;
	char *err;
	size_t errlen;
};

static int remaining_ms(const struct clean_run *r)
{
	uint64_t now = bench_now_ns();
	if (now >= r->deadline_ns)
		return 0;
	uint64_t ms = (r->deadline_ns - now) / 1000000u;
	return ms > 0 ? (int)ms : 1;
}

/* Waits for fd to be ready for `events` within the budget; -1 with err set otherwise. */
static int wait_fd(struct clean_run *r, int fd, short events, const char *what, const char *id)
{
	for (;;) {
		int ms = remaining_ms(r);
		struct pollfd p = {.fd = fd, .events = events};
		int rc = ms > 0 ? poll(&p, 1, ms) : 0;
		if (rc > 0)
			return 0;
		if (rc < 0 && errno == EINTR)
			continue;
		snprintf(r->err, r->errlen, "clean connect of %s: %s: %s", id, what,
		         rc == 0 ? "timed out" : strerror(errno));
		return -1;
	}
}

static int send_all(struct clean_run *r, int fd, const uint8_t *p, size_t n, const char *id)
{
	while (n > 0) {
		if (wait_fd(r, fd, POLLOUT, "send", id) != 0)
			return -1;
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w < 0) {
			snprintf(r->err, r->errlen, "clean connect of %s: send: %s", id,
			         strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Connects the client `id` and sends its clean CONNECT; the socket, or -1 (err set). */
static int open_clean(struct clean_run *r, const char *id)
{
	const struct bench_shared *sh = r->sh;
	const struct bench_opts *o = sh->o;
	int fd = socket(sh->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(r->err, r->errlen, "clean connect of %s: socket: %s", id, strerror(errno));
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)&sh->addr, sh->addr_len) != 0 &&
	    errno != EINPROGRESS) {
		snprintf(r->err, r->errlen, "clean connect of %s: connect: %s", id,
		         strerror(errno));
		close(fd);
		return -1;
	}
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (wait_fd(r, fd, POLLOUT, "connect", id) != 0) {
		close(fd);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
		snprintf(r->err, r->errlen, "clean connect of %s: connect: %s", id,
		         strerror(soerr != 0 ? soerr : errno));
		close(fd);
		return -1;
	}
	struct st_packet pkt = {.type = ST_CONNECT};
	pkt.connect.protocol_name = (struct st_bytes){(const uint8_t *)"MQTT", 4};
	pkt.connect.level = o->level;
	pkt.connect.clean_start = true; /* 5.0: and no Session Expiry Interval, so 0 */
	pkt.connect.keepalive_s = o->keepalive_s;
	pkt.connect.client_id = (struct st_bytes){(const uint8_t *)id, (uint32_t)strlen(id)};
	if (o->username) {
		pkt.connect.username_flag = true;
		pkt.connect.username = (struct st_bytes){(const uint8_t *)o->username,
		                                         (uint32_t)strlen(o->username)};
	}
	if (o->password) {
		pkt.connect.password_flag = true;
		pkt.connect.password = (struct st_bytes){(const uint8_t *)o->password,
		                                         (uint32_t)strlen(o->password)};
	}
	uint8_t buf[1024];
	int n = st_encode_packet(&pkt, o->level, buf, sizeof(buf));
	if (n < 0) {
		snprintf(r->err, r->errlen, "clean connect of %s: encoding CONNECT: %s", id,
		         st_strerror(n));
		close(fd);
		return -1;
	}
	if (send_all(r, fd, buf, (size_t)n, id) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads the CONNACK and checks it accepted the connection; then sends DISCONNECT. */
static int finish_clean(struct clean_run *r, int fd, const char *id)
{
	const struct bench_opts *o = r->sh->o;
	uint8_t buf[512];
	size_t have = 0;
	struct st_fixed_header fh;
	for (;;) {
		int rc = st_decode_fixed_header(buf, have, sizeof(buf), &fh);
		if (rc == ST_OK && have >= fh.header_len + fh.remaining_len)
			break;
		if (rc != ST_OK && rc != ST_ERR_NEED_MORE) {
			snprintf(r->err, r->errlen,
			         "clean connect of %s: bad packet from the broker", id);
			return -1;
		}
		if (wait_fd(r, fd, POLLIN, "waiting for CONNACK", id) != 0)
			return -1;
		ssize_t got = recv(fd, buf + have, sizeof(buf) - have, MSG_DONTWAIT);
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got <= 0) {
			snprintf(r->err, r->errlen,
			         "clean connect of %s: the broker closed the connection before "
			         "CONNACK%s%s",
			         id, got < 0 ? ": " : "", got < 0 ? strerror(errno) : "");
			return -1;
		}
		have += (size_t)got;
	}
	struct st_packet pkt;
	if (fh.type != ST_CONNACK ||
	    st_decode_body(&fh, buf + fh.header_len, o->level, &pkt) != ST_OK) {
		snprintf(r->err, r->errlen, "clean connect of %s: expected CONNACK, got %s", id,
		         st_packet_name(fh.type));
		return -1;
	}
	if (pkt.connack.code != 0) {
		snprintf(r->err, r->errlen,
		         "clean connect of %s: connection refused by the broker: CONNACK code "
		         "0x%02x",
		         id, pkt.connack.code);
		return -1;
	}
	/* DISCONNECT, reason 0 in 5.0 (a remaining length of 0 means success). */
	static const uint8_t disconnect[2] = {0xE0, 0x00};
	return send_all(r, fd, disconnect, sizeof(disconnect), id);
}

/* Waits for the broker to close after our DISCONNECT: the session is gone by then. */
static int await_close(struct clean_run *r, int fd, const char *id)
{
	uint8_t sink[256];
	for (;;) {
		if (wait_fd(r, fd, POLLIN, "waiting for the close after DISCONNECT", id) != 0)
			return -1;
		ssize_t got = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (got == 0 || (got < 0 && (errno == ECONNRESET || errno == EPIPE)))
			return 0;
		if (got < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(r->err, r->errlen, "clean connect of %s: recv: %s", id,
			         strerror(errno));
			return -1;
		}
	}
}

static void client_id(const struct bench_shared *sh, uint32_t index, char *out, size_t cap)
{
	const struct bench_plan *plan = &sh->plan;
	struct bench_conn c = {.index = index};
	c.role = index < plan->subs                ? BENCH_ROLE_SUB
	         : index < plan->subs + plan->pubs ? BENCH_ROLE_PUB
	                                           : BENCH_ROLE_IDLE;
	bench_mqtt_client_id(sh->threads[0], &c, out, cap);
}

int bench_sessions_clean(const struct bench_shared *sh, char *err, size_t errlen)
{
	struct clean_run r = {
	        .sh = sh,
	        .deadline_ns = bench_now_ns() + (uint64_t)BENCH_CLEAN_BUDGET_MS * 1000000u,
	        .err = err,
	        .errlen = errlen,
	};
	int fds[BENCH_CLEAN_BATCH];
	char id[96];
	int rc = 0;

	for (uint32_t first = 0; first < sh->nconns && rc == 0; first += BENCH_CLEAN_BATCH) {
		uint32_t n = sh->nconns - first;
		if (n > BENCH_CLEAN_BATCH)
			n = BENCH_CLEAN_BATCH;
		uint32_t opened = 0;
		for (; opened < n; opened++) {
			client_id(sh, first + opened, id, sizeof(id));
			if ((fds[opened] = open_clean(&r, id)) < 0) {
				rc = -1;
				break;
			}
		}
		for (uint32_t i = 0; i < opened && rc == 0; i++) {
			client_id(sh, first + i, id, sizeof(id));
			rc = finish_clean(&r, fds[i], id);
		}
		for (uint32_t i = 0; i < opened && rc == 0; i++) {
			client_id(sh, first + i, id, sizeof(id));
			rc = await_close(&r, fds[i], id);
		}
		for (uint32_t i = 0; i < opened; i++)
			close(fds[i]);
	}
	return rc;
}
