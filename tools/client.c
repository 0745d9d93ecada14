/*
 * A small blocking MQTT client over one TCP socket, for starling-pub and starling-sub.
 *
 * Reading: bytes go into one growable buffer; whole packets are cut from its front with
 * st_decode_fixed_header() (to learn a packet's size before it has all arrived) and
 * st_decode_packet(). A decoded packet is a set of views into that buffer; consumed bytes
 * are dropped lazily, on the next call, so a message handed to the caller stays valid until
 * then. Writing: each packet is encoded with st_encode_packet() into a scratch buffer and
 * sent whole; while the socket is full, incoming bytes are still read (not parsed) so that
 * neither side can block the other forever.
 *
 * Protocol state: a byte per packet identifier for outgoing QoS 1/2 (awaiting PUBACK, PUBREC
 * or PUBCOMP) and a bit per identifier for incoming QoS 2 messages between PUBREC and
 * PUBREL. Incoming QoS 2 messages are delivered when the PUBLISH arrives and duplicates are
 * suppressed until the PUBREL [MQTT-4.3.3-2], so no message is copied or held back.
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
#include "client.h"

#define CLIENT_IDS      65536u
#define READ_CHUNK      16384u
#define RBUF_MIN        4096u
#define PING_FAIL_MS(c) ((int64_t)(c)->cfg.keepalive_s * 1000)

/* What an outgoing packet identifier is waiting for. */
enum out_state {
	OUT_FREE = 0,
	OUT_WAIT_PUBACK,
	OUT_WAIT_PUBREC,
	OUT_WAIT_PUBCOMP,
	OUT_WAIT_SUBACK,
};

struct client {
	struct client_config cfg; /* copy of the caller's config; strings borrowed */
	int fd;                   /* the socket, -1 when closed */
	uint8_t *rbuf;            /* received bytes */
	size_t rcap;              /* allocated bytes of rbuf */
	size_t rstart;            /* first byte not yet consumed */
	size_t rend;              /* end of received bytes */
	size_t consumed;          /* bytes of the packet last handed out, dropped next call */
	uint8_t *wbuf;            /* scratch buffer for encoding one packet */
	size_t wcap;              /* allocated bytes of wbuf */
	int64_t last_send_ms;     /* when the last packet went out, for keep alive */
	int64_t ping_sent_ms;     /* when the outstanding PINGREQ went out, 0 if none */
	uint16_t last_id;         /* last packet identifier handed out */
	uint32_t inflight;        /* identifiers in a QoS 1/2 publish state */
	uint32_t in_pending;      /* bits set in in_qos2 */
	bool eof;                 /* the broker closed its end */
	bool refusing;            /* incoming PUBLISH packets are ignored */
	const char *fail_text;    /* why the last call failed, when errno does not say */
	int sys_errno;            /* errno of the last failed system call */
	uint8_t out[CLIENT_IDS];  /* enum out_state per packet identifier */
	uint8_t in_qos2[CLIENT_IDS / 8]; /* incoming QoS 2 identifiers awaiting PUBREL */
};

int64_t client_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int client_new(struct client **out, const struct client_config *cfg)
{
	struct client *c = calloc(1, sizeof(*c));

	if (!c)
		return ST_ERR_NOMEM;
	c->cfg = *cfg;
	if (c->cfg.inflight_max == 0 || c->cfg.inflight_max > CLIENT_INFLIGHT_MAX)
		c->cfg.inflight_max = CLIENT_INFLIGHT_DEFAULT;
	c->fd = -1;
	*out = c;
	return ST_OK;
}

static void close_socket(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

void client_free(struct client *c)
{
	if (!c)
		return;
	close_socket(c);
	free(c->rbuf);
	free(c->wbuf);
	free(c);
}

uint32_t client_inflight(const struct client *c)
{
	return c->inflight;
}

uint32_t client_incoming_pending(const struct client *c)
{
	return c->in_pending;
}

void client_refuse_messages(struct client *c)
{
	c->refusing = true;
}

const char *client_error(const struct client *c, int err)
{
	if (c->fail_text)
		return c->fail_text;
	if (err == ST_ERR_SYS)
		return strerror(c->sys_errno);
	return st_strerror(err);
}

static int fail_sys(struct client *c, int err_no)
{
	c->sys_errno = err_no;
	c->fail_text = NULL;
	return ST_ERR_SYS;
}

static int fail(struct client *c, int err, const char *text)
{
	c->fail_text = text;
	return err;
}

/* --- debug output, in mosquitto_pub/mosquitto_sub -d's words ----------------------------- */

static void debug_line(const struct client *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void debug_line(const struct client *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->cfg.debug)
		return;
	printf("Client %s ", c->cfg.client_id);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	/* Debug output interleaves with received payloads and other processes' output. */
	fflush(stdout);
}

static void debug_publish(const struct client *c, const char *dir, const struct st_publish *p)
{
	debug_line(c, "%s PUBLISH (d%d, q%d, r%d, m%u, '%.*s', ... (%u bytes))", dir, p->dup,
	           p->qos, p->retain, p->packet_id, (int)p->topic.len, (const char *)p->topic.ptr,
	           p->payload.len);
}

/* --- sockets --------------------------------------------------------------------------- */

static int open_socket(struct client *c)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char port[8];
	int gai, last_errno = ECONNREFUSED;

	snprintf(port, sizeof(port), "%u", c->cfg.port);
	gai = getaddrinfo(c->cfg.host, port, &hints, &res);
	if (gai != 0)
		return fail(c, ST_ERR_SYS, gai_strerror(gai));
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
		return fail_sys(c, last_errno);
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
		n = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? ST_OK : fail_sys(c, errno);
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
	int64_t limit_ms = c->cfg.keepalive_s ? PING_FAIL_MS(c) * 2 : 60000;
	int n;

	do {
		n = poll(&p, 1, (int)limit_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail_sys(c, errno);
	if (n == 0)
		return fail(c, ST_ERR_SYS, "Timed out sending to the broker.");
	if (p.revents & POLLIN)
		return read_some(c, false);
	return ST_OK;
}

static int send_all(struct client *c, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	if (c->fd < 0)
		return fail(c, ST_ERR_SYS, "The client is not currently connected.");
	while (off < len) {
		ssize_t n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return fail_sys(c, errno);
		int rc = wait_writable(c);
		if (rc < 0)
			return rc;
	}
	c->last_send_ms = client_now_ms();
	return ST_OK;
}

/* Encodes *pkt at the session's level and sends it. */
static int send_packet(struct client *c, const struct st_packet *pkt)
{
	size_t size = st_packet_size(pkt, c->cfg.level);
	int n;

	if (size == 0)
		return fail(c, ST_ERR_LENGTH, "Packet too large to encode.");
	if (size > c->wcap) {
		uint8_t *p = realloc(c->wbuf, size);
		if (!p)
			return ST_ERR_NOMEM;
		c->wbuf = p;
		c->wcap = size;
	}
	n = st_encode_packet(pkt, c->cfg.level, c->wbuf, c->wcap);
	if (n < 0)
		return fail(c, n, NULL);
	return send_all(c, c->wbuf, (size_t)n);
}

static int send_ack(struct client *c, uint8_t type, uint16_t packet_id)
{
	struct st_packet pkt = {.type = type};

	pkt.ack.packet_id = packet_id;
	return send_packet(c, &pkt);
}

static int send_simple(struct client *c, uint8_t type)
{
	struct st_packet pkt = {.type = type};

	return send_packet(c, &pkt);
}

/* --- packet identifiers ----------------------------------------------------------------- */

/*
 * The next identifier no outgoing flow uses [MQTT-2.3.1-2]; 0 is never used
 * [MQTT-2.3.1-1]. The caller has checked that one is free, so the scan ends.
 */
static uint16_t next_id(struct client *c)
{
	for (uint32_t tries = 0; tries < CLIENT_IDS; tries++) {
		c->last_id = (uint16_t)(c->last_id + 1);
		if (c->last_id != 0 && c->out[c->last_id] == OUT_FREE)
			return c->last_id;
	}
	return 0;
}

static bool in_qos2_test(const struct client *c, uint16_t id)
{
	return c->in_qos2[id / 8] & (1u << (id % 8));
}

static void in_qos2_set(struct client *c, uint16_t id, bool on)
{
	uint8_t bit = (uint8_t)(1u << (id % 8));

	if (on && !(c->in_qos2[id / 8] & bit)) {
		c->in_qos2[id / 8] |= bit;
		c->in_pending++;
	} else if (!on && (c->in_qos2[id / 8] & bit)) {
		c->in_qos2[id / 8] &= (uint8_t)~bit;
		c->in_pending--;
	}
}

/* --- the receive loop ------------------------------------------------------------------- */

/* Milliseconds poll() may sleep: until the deadline, the next PINGREQ or a ping timeout. */
static int poll_timeout(const struct client *c, int64_t now, int64_t deadline_ms)
{
	int64_t until = deadline_ms;

	if (c->cfg.keepalive_s) {
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
	if (!c->cfg.keepalive_s)
		return ST_OK;
	if (c->ping_sent_ms) {
		if (now - c->ping_sent_ms >= PING_FAIL_MS(c))
			return fail(c, ST_ERR_SYS,
			            "Keepalive timeout: no PINGRESP from the broker.");
		return ST_OK;
	}
	if (now - c->last_send_ms < PING_FAIL_MS(c))
		return ST_OK;
	debug_line(c, "sending PINGREQ");
	c->ping_sent_ms = now;
	return send_simple(c, ST_PINGREQ);
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

	rc = st_decode_fixed_header(buf, have, 0, &fh);
	if (rc == ST_ERR_NEED_MORE)
		return 0;
	if (rc < 0)
		return fail(c, rc, NULL);
	if (have < (size_t)fh.header_len + fh.remaining_len) {
		rc = rbuf_reserve(c, fh.header_len + fh.remaining_len - have);
		return rc < 0 ? rc : 0;
	}
	rc = st_decode_packet(buf, have, c->cfg.level, 0, pkt, &used);
	if (rc < 0)
		return fail(c, rc, NULL);
	c->consumed = used;
	return 1;
}

/*
 * Waits for the next packet until deadline_ms (-1: none), keeping the connection alive.
 * Returns 1 with *pkt, 0 at the deadline, a negative error if the connection failed.
 * With watch descriptors, returns 2 when one of them is readable (index in *watch_hit).
 */
static int next_packet_watch(struct client *c, int64_t deadline_ms, const int *watch_fds,
                             size_t nwatch, struct st_packet *pkt, unsigned *watch_hit)
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
			return fail(c, ST_ERR_SYS, "The connection was lost.");
		rc = keepalive(c, now);
		if (rc < 0)
			return rc;
		if (deadline_ms >= 0 && now >= deadline_ms)
			return 0;
		p[0] = (struct pollfd){.fd = c->fd, .events = POLLIN};
		for (size_t k = 0; k < nwatch; k++)
			p[1 + k] = (struct pollfd){.fd = watch_fds[k], .events = POLLIN};
		n = poll(p, 1 + nwatch, poll_timeout(c, now, deadline_ms));
		if (n < 0 && errno != EINTR)
			return fail_sys(c, errno);
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

static int next_packet(struct client *c, int64_t deadline_ms, struct st_packet *pkt)
{
	unsigned unused;

	return next_packet_watch(c, deadline_ms, NULL, 0, pkt, &unused);
}

/* --- connecting ----------------------------------------------------------------------- */

static void fill_connect(const struct client *c, struct st_packet *pkt)
{
	const struct client_config *k = &c->cfg;
	struct st_connect *cn = &pkt->connect;
	static const char name_311[] = "MQTT", name_31[] = "MQIsdp";
	const char *name = k->level == ST_MQTT_31 ? name_31 : name_311;

	pkt->type = ST_CONNECT;
	cn->protocol_name = (struct st_bytes){(const uint8_t *)name, (uint32_t)strlen(name)};
	cn->level = k->level;
	cn->clean_start = k->clean_session;
	cn->keepalive_s = k->keepalive_s;
	cn->client_id =
	        (struct st_bytes){(const uint8_t *)k->client_id, (uint32_t)strlen(k->client_id)};
	if (k->will_topic) {
		cn->will_flag = true;
		cn->will_qos = k->will_qos;
		cn->will_retain = k->will_retain;
		cn->will_topic = (struct st_bytes){(const uint8_t *)k->will_topic,
		                                   (uint32_t)strlen(k->will_topic)};
		cn->will_payload =
		        (struct st_bytes){k->will_payload, (uint32_t)k->will_payload_len};
	}
	/* Without a user name there is no password [MQTT-3.1.2-22]; cli.c refuses -P alone. */
	if (k->username) {
		cn->username_flag = true;
		cn->username = (struct st_bytes){(const uint8_t *)k->username,
		                                 (uint32_t)strlen(k->username)};
		if (k->password) {
			cn->password_flag = true;
			cn->password = (struct st_bytes){(const uint8_t *)k->password,
			                                 (uint32_t)strlen(k->password)};
		}
	}
}

int client_connect(struct client *c, uint8_t *connack_code, bool *session_present)
{
	struct st_packet pkt = {0};
	int64_t deadline;
	int rc;

	c->fail_text = NULL;
	*connack_code = 0;
	*session_present = false;
	rc = open_socket(c);
	if (rc < 0)
		return rc;
	/* CONNECT is the first packet on the connection [MQTT-3.1.0-1]. */
	fill_connect(c, &pkt);
	debug_line(c, "sending CONNECT");
	rc = send_packet(c, &pkt);
	if (rc < 0)
		return rc;
	deadline = client_now_ms() + (c->cfg.keepalive_s ? PING_FAIL_MS(c) : 60000);
	rc = next_packet(c, deadline, &pkt);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return fail(c, ST_ERR_SYS, "Timed out waiting for CONNACK.");
	if (pkt.type != ST_CONNACK)
		return fail(c, ST_ERR_PROTOCOL, "Protocol error: the broker did not send CONNACK.");
	debug_line(c, "received CONNACK (%u)", pkt.connack.code);
	*connack_code = pkt.connack.code;
	*session_present = pkt.connack.session_present;
	if (pkt.connack.code != 0)
		close_socket(c); /* the broker closes too [MQTT-3.2.2-5] */
	return ST_OK;
}

/* --- publishing and subscribing ---------------------------------------------------------- */

int client_publish(struct client *c, const char *topic, const uint8_t *payload, size_t len,
                   uint8_t qos, bool retain, uint16_t *packet_id)
{
	struct st_packet pkt = {.type = ST_PUBLISH};
	struct st_publish *p = &pkt.publish;
	int rc;

	c->fail_text = NULL;
	if (len > ST_REMLEN_MAX)
		return fail(c, ST_ERR_TOO_LARGE, "Message payload is too large.");
	if (qos > 0 && c->inflight >= c->cfg.inflight_max)
		return ST_ERR_LIMIT;
	p->qos = qos;
	p->retain = retain;
	p->topic = (struct st_bytes){(const uint8_t *)topic, (uint32_t)strlen(topic)};
	p->payload = (struct st_bytes){payload, (uint32_t)len};
	if (qos > 0) {
		/* Unacknowledged until PUBACK (QoS 1) or PUBREC then PUBCOMP (QoS 2)
		 * [MQTT-4.3.2-1] [MQTT-4.3.3-1]. */
		p->packet_id = next_id(c);
		if (p->packet_id == 0)
			return ST_ERR_LIMIT; /* every identifier is in use (SUBSCRIBEs included) */
		c->out[p->packet_id] = qos == 1 ? OUT_WAIT_PUBACK : OUT_WAIT_PUBREC;
		c->inflight++;
	}
	if (packet_id)
		*packet_id = p->packet_id;
	debug_publish(c, "sending", p);
	rc = send_packet(c, &pkt);
	return rc;
}

int client_subscribe(struct client *c, const char *const *filters, size_t n, uint8_t qos,
                     uint16_t *packet_id)
{
	struct st_packet pkt = {.type = ST_SUBSCRIBE};
	struct st_sub_entry *entries;
	int rc;

	c->fail_text = NULL;
	if (n == 0 || n > UINT16_MAX)
		return ST_ERR_NO_FILTERS;
	pkt.subscribe.packet_id = next_id(c);
	if (pkt.subscribe.packet_id == 0)
		return ST_ERR_LIMIT;
	entries = calloc(n, sizeof(*entries));
	if (!entries)
		return ST_ERR_NOMEM;
	for (size_t k = 0; k < n; k++) {
		entries[k].filter = (struct st_bytes){(const uint8_t *)filters[k],
		                                      (uint32_t)strlen(filters[k])};
		entries[k].options = qos;
		debug_line(c, "sending SUBSCRIBE (Mid: %u, Topic: %s, QoS: %u, Options: 0x%02x)",
		           pkt.subscribe.packet_id, filters[k], qos, qos & ~ST_SUBOPT_QOS_MASK);
	}
	pkt.subscribe.entries = entries;
	pkt.subscribe.count = (uint32_t)n;
	c->out[pkt.subscribe.packet_id] = OUT_WAIT_SUBACK;
	if (packet_id)
		*packet_id = pkt.subscribe.packet_id;
	rc = send_packet(c, &pkt);
	free(entries);
	return rc;
}

/* An incoming PUBLISH: acknowledge it, then hand it to the caller unless it repeats a QoS 2
 * message already delivered. Returns 1 to deliver, 0 to drop, or a negative error. */
static int on_publish(struct client *c, const struct st_publish *p)
{
	int rc;

	debug_publish(c, "received", p);
	if (c->refusing)
		return 0; /* unacknowledged: a persistent session keeps it for next time */
	switch (p->qos) {
	case 0:
		return 1;
	case 1:
		/* PUBACK once we own the message [MQTT-4.3.2-2], in arrival order
		 * [MQTT-4.6.0-2]. */
		debug_line(c, "sending PUBACK (m%u, rc0)", p->packet_id);
		rc = send_ack(c, ST_PUBACK, p->packet_id);
		return rc < 0 ? rc : 1;
	default:
		/* PUBREC for every copy until the PUBREL, but deliver only the first
		 * [MQTT-4.3.3-2]. */
		debug_line(c, "sending PUBREC (m%u, rc0)", p->packet_id);
		rc = send_ack(c, ST_PUBREC, p->packet_id);
		if (rc < 0)
			return rc;
		if (in_qos2_test(c, p->packet_id))
			return 0;
		in_qos2_set(c, p->packet_id, true);
		return 1;
	}
}

/* Completes an outgoing publish flow for `id` if it is in state `want`. */
static int complete_out(struct client *c, uint16_t id, uint8_t want, uint8_t reason,
                        struct client_event *ev)
{
	if (c->out[id] != want)
		return 0; /* a late duplicate: nothing waits for it */
	c->out[id] = OUT_FREE;
	c->inflight--;
	ev->type = CLIENT_EV_PUBLISHED;
	ev->packet_id = id;
	ev->reason = reason;
	return 1;
}

/* Acknowledgements of our own packets. Returns 1 with an event, 0 without, or an error. */
static int on_ack(struct client *c, const struct st_packet *pkt, struct client_event *ev)
{
	uint16_t id = pkt->ack.packet_id;
	int rc;

	switch (pkt->type) {
	case ST_PUBACK:
		debug_line(c, "received PUBACK (Mid: %u, RC:%u)", id, pkt->ack.reason);
		return complete_out(c, id, OUT_WAIT_PUBACK, pkt->ack.reason, ev);
	case ST_PUBREC:
		debug_line(c, "received PUBREC (Mid: %u)", id);
		if (c->out[id] != OUT_WAIT_PUBREC && c->out[id] != OUT_WAIT_PUBCOMP)
			return 0;
		/* PUBREL with the same identifier; PUBREL is now what awaits an answer
		 * [MQTT-4.3.3-1]. */
		c->out[id] = OUT_WAIT_PUBCOMP;
		debug_line(c, "sending PUBREL (m%u)", id);
		return send_ack(c, ST_PUBREL, id);
	case ST_PUBCOMP:
		debug_line(c, "received PUBCOMP (Mid: %u, RC:%u)", id, pkt->ack.reason);
		return complete_out(c, id, OUT_WAIT_PUBCOMP, pkt->ack.reason, ev);
	default: /* ST_PUBREL: the broker releases a QoS 2 message it sent us */
		debug_line(c, "received PUBREL (Mid: %u)", id);
		in_qos2_set(c, id, false);
		debug_line(c, "sending PUBCOMP (m%u)", id);
		rc = send_ack(c, ST_PUBCOMP, id);
		if (rc < 0)
			return rc;
		ev->type = CLIENT_EV_RELEASED;
		ev->packet_id = id;
		return 1;
	}
}

/* Handles one packet from the broker. Returns 1 with an event for the caller, 0 without. */
static int on_packet(struct client *c, const struct st_packet *pkt, struct client_event *ev)
{
	int rc;

	switch (pkt->type) {
	case ST_PUBLISH:
		rc = on_publish(c, &pkt->publish);
		if (rc == 1) {
			ev->type = CLIENT_EV_MESSAGE;
			ev->msg = pkt->publish;
		}
		return rc;
	case ST_PUBACK:
	case ST_PUBREC:
	case ST_PUBREL:
	case ST_PUBCOMP:
		return on_ack(c, pkt, ev);
	case ST_SUBACK:
		debug_line(c, "received SUBACK");
		if (c->out[pkt->suback.packet_id] != OUT_WAIT_SUBACK)
			return 0;
		c->out[pkt->suback.packet_id] = OUT_FREE;
		ev->type = CLIENT_EV_SUBACK;
		ev->packet_id = pkt->suback.packet_id;
		ev->codes = pkt->suback.codes;
		return 1;
	case ST_UNSUBACK:
		debug_line(c, "received UNSUBACK");
		return 0;
	case ST_PINGRESP:
		debug_line(c, "received PINGRESP");
		c->ping_sent_ms = 0;
		return 0;
	case ST_DISCONNECT:
		debug_line(c, "received DISCONNECT");
		return fail(c, ST_ERR_PROTOCOL, "The broker closed the connection.");
	default:
		/* CONNECT, SUBSCRIBE, PINGREQ... travel the other way: a protocol violation
		 * closes the connection [MQTT-4.8.0-1]. */
		return fail(c, ST_ERR_PROTOCOL,
		            "Protocol error: unexpected packet from the broker.");
	}
}

int client_wait(struct client *c, int64_t deadline_ms, const int *watch_fds, size_t nwatch,
                struct client_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	c->fail_text = NULL;
	if (c->fd < 0)
		return fail(c, ST_ERR_SYS, "The client is not currently connected.");
	/* Each pass handles one packet; acknowledgements and pings loop back for more, so
	 * the loop ends at an event, the deadline or an error. */
	for (;;) {
		struct st_packet pkt;
		unsigned hit = 0;
		int rc = next_packet_watch(c, deadline_ms, watch_fds, nwatch, &pkt, &hit);

		if (rc < 0) {
			close_socket(c);
			return rc;
		}
		if (rc == 0) {
			ev->type = CLIENT_EV_TIMEOUT;
			return ST_OK;
		}
		if (rc == 2) {
			ev->type = CLIENT_EV_WATCH;
			ev->watch_index = hit;
			return ST_OK;
		}
		rc = on_packet(c, &pkt, ev);
		if (rc < 0) {
			close_socket(c);
			return rc;
		}
		if (rc == 1)
			return ST_OK;
	}
}

int client_disconnect(struct client *c, int linger_ms)
{
	int64_t deadline = client_now_ms() + linger_ms;
	uint8_t sink[4096];
	int rc;

	c->fail_text = NULL;
	if (c->fd < 0)
		return fail(c, ST_ERR_SYS, "The client is not currently connected.");
	debug_line(c, "sending DISCONNECT");
	/* A clean DISCONNECT makes the broker drop the will [MQTT-3.14.4-3]; then the client
	 * closes the connection and sends nothing more [MQTT-3.14.4-1] [MQTT-3.14.4-2]. */
	rc = send_simple(c, ST_DISCONNECT);
	if (rc < 0) {
		close_socket(c);
		return rc;
	}
	shutdown(c->fd, SHUT_WR);
	/* Closing with unread bytes would send a reset that can overtake the DISCONNECT;
	 * read until the broker closes its side (it does on DISCONNECT), within the linger. */
	for (int64_t now = client_now_ms(); now < deadline; now = client_now_ms()) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, (int)(deadline - now)) <= 0)
			continue;
		n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			break;
	}
	close_socket(c);
	return ST_OK;
}
