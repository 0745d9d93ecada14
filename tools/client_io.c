/*
 * The tools' MQTT client, its transport half: one TCP socket, one growable read buffer, whole
 * packets cut from it, packets encoded and sent whole, keep alive timing, and the debug lines
 * mosquitto_pub/mosquitto_sub -d print. The protocol half is client.c.
 *
 * Reading: bytes go into one growable buffer; whole packets are cut from its front with
 * st_decode_fixed_header() (to learn a packet's size before it has all arrived) and
 * st_decode_packet(). A decoded packet is a set of views into that buffer; consumed bytes
 * are dropped lazily, on the next call, so a message handed to the caller stays valid until
 * then. Writing: each packet is encoded with st_encode_packet() into a scratch buffer and
 * sent whole; while the socket is full, incoming bytes are still read (not parsed) so that
 * neither side can block the other forever.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "starling/codec.h"
#include "starling/error.h"
#include "client_int.h"

#define READ_CHUNK 16384u
#define RBUF_MIN   4096u

int64_t client_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *client_error(const struct client *c, int err)
{
	if (c->fail_text)
		return c->fail_text;
	if (err == ST_ERR_SYS)
		return strerror(c->sys_errno);
	return st_strerror(err);
}

int client_fail_sys(struct client *c, int err_no)
{
	c->sys_errno = err_no;
	c->fail_text = NULL;
	return ST_ERR_SYS;
}

int client_fail(struct client *c, int err, const char *text)
{
	c->fail_text = text;
	return err;
}

/* --- debug output, in mosquitto_pub/mosquitto_sub -d's words ----------------------------- */

void client_debug(const struct client *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->cfg.debug)
		return;
	/* libmosquitto prints a client without an id (MQTT 5, before CONNACK) as (null). */
	printf("Client %s ", c->id_shown[0] ? c->id_shown : "(null)");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	/* Debug output interleaves with received payloads and other processes' output. */
	fflush(stdout);
}

void client_debug_publish(const struct client *c, const char *dir, const struct st_publish *p)
{
	/* An empty topic (MQTT 5, a bound topic alias) prints as libmosquitto's NULL topic. */
	struct st_bytes t =
	        p->topic.len ? p->topic : (struct st_bytes){(const uint8_t *)"(null)", 6};

	client_debug(c, "%s PUBLISH (d%d, q%d, r%d, m%u, '%.*s', ... (%u bytes))", dir, p->dup,
	             p->qos, p->retain, p->packet_id, (int)t.len, (const char *)t.ptr,
	             p->payload.len);
}

/* --- sockets --------------------------------------------------------------------------- */

int client_open_socket(struct client *c)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char port[8];
	int gai, last_errno = ECONNREFUSED;

	snprintf(port, sizeof(port), "%u", c->cfg.port);
	gai = getaddrinfo(c->cfg.host, port, &hints, &res);
	if (gai != 0)
		return client_fail(c, ST_ERR_SYS, gai_strerror(gai));
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		int one = 1;

		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			/* Small packets (acks, pings, short messages) should not wait for Nagle. */
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			c->fd = fd;
			break;
		}
		last_errno = errno;
		close(fd);
	}
	freeaddrinfo(res);
	if (c->fd < 0)
		return client_fail_sys(c, last_errno);
	if (c->cfg.cafile || c->cfg.capath)
		return client_tls_start(c);
	return ST_OK;
}

/* Makes room for `need` more bytes after rend, dropping consumed bytes first. */
static int rbuf_reserve(struct client *c, size_t need)
{
	size_t cap;
	uint8_t *p;

	if (c->rstart > 0 && c->rcap - c->rend < need) {
		memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
		c->rend -= c->rstart;
		c->rstart = 0;
	}
	if (c->rcap - c->rend >= need)
		return ST_OK;
	cap = c->rcap ? c->rcap : RBUF_MIN;
	while (cap - c->rend < need)
		cap *= 2;
	p = realloc(c->rbuf, cap);
	if (!p)
		return ST_ERR_NOMEM;
	c->rbuf = p;
	c->rcap = cap;
	return ST_OK;
}

/*
 * One read(2) into the buffer; ST_OK with c->eof set at end of stream. With `may_move`
 * false the buffer is neither compacted nor grown, so views into it (a message being
 * acknowledged) stay valid, and only the room already at its end is filled.
 */
static int read_some(struct client *c, bool may_move)
{
	ssize_t n;

	if (may_move) {
		int rc = rbuf_reserve(c, READ_CHUNK);
		if (rc < 0)
			return rc;
	}
	if (c->rend == c->rcap)
		return ST_OK;
	do {
		n = c->ssl ? client_tls_recv(c, c->rbuf + c->rend, c->rcap - c->rend)
		           : recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && c->ssl && errno == EPROTO)
		return ST_ERR_SYS; /* client_tls_recv said why */
	if (n < 0)
		return errno == EAGAIN ? ST_OK : client_fail_sys(c, errno);
	if (n == 0)
		c->eof = true;
	c->rend += (size_t)n;
	return ST_OK;
}

/*
 * Waits until the socket can take more bytes. What arrives meanwhile is read (not parsed)
 * into the room left in the buffer, which is not moved: a packet being answered may still
 * be in use. When that room is full, TCP holds the broker back instead.
 */
static int wait_writable(struct client *c)
{
	bool room = c->rend < c->rcap;
	struct pollfd p = {.fd = c->fd, .events = POLLOUT | (c->eof || !room ? 0 : POLLIN)};
	int64_t limit_ms = c->keepalive_s ? PING_FAIL_MS(c) * 2 : 60000;
	int n;

	do {
		n = poll(&p, 1, (int)limit_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return client_fail_sys(c, errno);
	if (n == 0)
		return client_fail(c, ST_ERR_SYS, "Timed out sending to the broker.");
	if (p.revents & POLLIN)
		return read_some(c, false);
	return ST_OK;
}

static int send_all(struct client *c, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	if (c->fd < 0)
		return client_fail(c, ST_ERR_SYS, "The client is not currently connected.");
	while (off < len) {
		ssize_t n = c->ssl ? client_tls_send(c, buf + off, len - off)
		                   : send(c->fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return c->ssl && errno == EPIPE ? ST_ERR_SYS : client_fail_sys(c, errno);
		int rc = wait_writable(c);
		if (rc < 0)
			return rc;
	}
	c->last_send_ms = client_now_ms();
	return ST_OK;
}

void client_close_socket(struct client *c)
{
	client_tls_close(c, false);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->connected = false;
}

int client_send_packet(struct client *c, const struct st_packet *pkt)
{
	size_t size = st_packet_size(pkt, c->cfg.level);
	int n;

	if (size == 0)
		return client_fail(c, ST_ERR_LENGTH, "Packet too large to encode.");
	if (c->packet_max_out && size > c->packet_max_out)
		return client_fail(c, ST_ERR_TOO_LARGE,
		                   "Packet larger than the broker's maximum packet size.");
	if (size > c->wcap) {
		uint8_t *p = realloc(c->wbuf, size);
		if (!p)
			return ST_ERR_NOMEM;
		c->wbuf = p;
		c->wcap = size;
	}
	n = st_encode_packet(pkt, c->cfg.level, c->wbuf, c->wcap);
	if (n < 0)
		return client_fail(c, n, NULL);
	return send_all(c, c->wbuf, (size_t)n);
}

int client_send_ack(struct client *c, uint8_t type, uint16_t packet_id, uint8_t reason)
{
	struct st_packet pkt = {.type = type};

	pkt.ack.packet_id = packet_id;
	pkt.ack.reason = reason; /* the encoder leaves out a 0 (section 3.4.2.1) */
	return client_send_packet(c, &pkt);
}

int client_send_simple(struct client *c, uint8_t type)
{
	struct st_packet pkt = {.type = type};

	return client_send_packet(c, &pkt);
}

/* --- the receive loop ------------------------------------------------------------------- */

/* Milliseconds poll() may sleep: until the deadline, the next PINGREQ or a ping timeout. */
static int poll_timeout(const struct client *c, int64_t now, int64_t deadline_ms)
{
	int64_t until = deadline_ms;

	if (c->keepalive_s) {
		int64_t ka = c->ping_sent_ms ? c->ping_sent_ms + PING_FAIL_MS(c)
		                             : c->last_send_ms + PING_FAIL_MS(c);
		if (until < 0 || ka < until)
			until = ka;
	}
	if (until < 0)
		return -1;
	if (until <= now)
		return 0;
	return until - now > 3600000 ? 3600000 : (int)(until - now);
}

/* Sends PINGREQ when nothing went out for a keep alive [MQTT-3.1.2-23]; fails when the
 * PINGRESP to the last one did not come back within a keep alive. */
static int keepalive(struct client *c, int64_t now)
{
	if (!c->keepalive_s)
		return ST_OK;
	if (c->ping_sent_ms) {
		if (now - c->ping_sent_ms >= PING_FAIL_MS(c))
			return client_fail(c, ST_ERR_SYS,
			                   "Keepalive timeout: no PINGRESP from the broker.");
		return ST_OK;
	}
	if (now - c->last_send_ms < PING_FAIL_MS(c))
		return ST_OK;
	client_debug(c, "sending PINGREQ");
	c->ping_sent_ms = now;
	return client_send_simple(c, ST_PINGREQ);
}

/*
 * Cuts the next whole packet from the buffer into *pkt. Returns 1 with a packet, 0 when the
 * buffer holds only part of one (room for the rest is reserved), or a negative error.
 */
static int take_packet(struct client *c, struct st_packet *pkt)
{
	struct st_fixed_header fh;
	const uint8_t *buf = c->rbuf + c->rstart;
	size_t have = c->rend - c->rstart;
	size_t used = 0;
	int rc;

	/* Past our Maximum Packet Size: the broker broke [MQTT-3.1.2-24]; 0x95 follows. */
	rc = st_decode_fixed_header(buf, have, c->packet_max_in, &fh);
	if (rc == ST_ERR_NEED_MORE)
		return 0;
	if (rc < 0)
		return client_fail(c, rc, NULL);
	if (have < (size_t)fh.header_len + fh.remaining_len) {
		rc = rbuf_reserve(c, fh.header_len + fh.remaining_len - have);
		return rc < 0 ? rc : 0;
	}
	rc = st_decode_packet(buf, have, c->cfg.level, c->packet_max_in, pkt, &used);
	if (rc < 0)
		return client_fail(c, rc, NULL);
	c->consumed = used;
	return 1;
}

int client_next_packet(struct client *c, int64_t deadline_ms, const int *watch_fds, size_t nwatch,
                       struct st_packet *pkt, unsigned *watch_hit)
{
	struct pollfd p[1 + CLIENT_WATCH_MAX];

	if (nwatch > CLIENT_WATCH_MAX)
		nwatch = CLIENT_WATCH_MAX;
	for (;;) {
		int64_t now = client_now_ms();
		int rc, n;

		c->rstart += c->consumed;
		c->consumed = 0;
		rc = take_packet(c, pkt);
		if (rc != 0)
			return rc;
		if (c->eof)
			return client_fail(c, ST_ERR_SYS, "The connection was lost.");
		rc = keepalive(c, now);
		if (rc < 0)
			return rc;
		if (deadline_ms >= 0 && now >= deadline_ms)
			return 0;
		if (client_tls_pending(c)) {
			rc = read_some(c, true);
			if (rc < 0)
				return rc;
			continue;
		}
		p[0] = (struct pollfd){.fd = c->fd, .events = POLLIN};
		for (size_t k = 0; k < nwatch; k++)
			p[1 + k] = (struct pollfd){.fd = watch_fds[k], .events = POLLIN};
		n = poll(p, 1 + nwatch, poll_timeout(c, now, deadline_ms));
		if (n < 0 && errno != EINTR)
			return client_fail_sys(c, errno);
		if (n <= 0)
			continue;
		if (p[0].revents) {
			rc = read_some(c, true);
			if (rc < 0)
				return rc;
			continue;
		}
		for (size_t k = 0; k < nwatch; k++) {
			if (watch_fds[k] >= 0 && p[1 + k].revents) {
				*watch_hit = (unsigned)k;
				return 2;
			}
		}
	}
}
