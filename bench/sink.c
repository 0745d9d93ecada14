/*
 * starling-sink: the trivial fake broker that proves starling-bench's own speed (bench/README.md).
 *
 * It answers CONNECT with CONNACK, SUBSCRIBE with SUBACK (granting what was asked), PINGREQ
 * with PINGRESP, acknowledges QoS 1 and 2 publishes, and otherwise discards what it receives:
 * no routing, no queues. It only counts PUBLISH packets, parsing each fixed header in place in
 * 256 KiB reads, so it costs far less per message than any broker and the figure measured
 * against it is the generator's. With --source it is the reverse: every connection that
 * subscribes is then sent an endless stream of pre-encoded QoS 0 PUBLISH packets (topic
 * bench/source, payloads in starling-bench's format: send time, publisher id 0, a sequence
 * per connection), restamped per 64 KiB batch, for measuring the generator's receive side.
 *
 * Plain epoll and non-blocking sockets in one thread; one process per run, stopped by SIGTERM
 * or SIGINT or after --duration. On exit it prints one JSON line of counts and rates.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "starling/codec.h"

#define RX_BYTES        (256u * 1024u) /* one read */
#define STREAM_BYTES    (64u * 1024u)  /* one batch of streamed publishes */
#define CONNS_MAX       100000u        /* connections at once */
#define EVENTS_MAX      256u           /* epoll events per wait */
#define READS_PER_EVENT 8u             /* fairness: reads per readable socket per wait */
#define TAG_LISTEN      UINT64_MAX     /* epoll data of the listening socket */
#define TAG_SIGNAL      (UINT64_MAX - 1u)

struct sink_opts {
	const char *host;  /* listen address */
	uint16_t port;     /* listen port */
	bool source;       /* stream publishes to subscribers */
	uint32_t payload;  /* streamed payload size */
	double duration_s; /* exit after this long, 0: on a signal only */
};

struct sink_conn {
	int fd;              /* socket, -1 when free */
	uint8_t level;       /* protocol level from CONNECT */
	bool streaming;      /* --source: this subscriber gets the stream */
	bool want_out;       /* EPOLLOUT is armed */
	uint8_t *rx;         /* received bytes not yet parsed (a partial packet) */
	uint32_t rx_len;     /* bytes in rx */
	uint8_t *tx;         /* replies not yet sent */
	uint32_t tx_len;     /* bytes in tx */
	uint32_t tx_cap;     /* bytes allocated for tx */
	uint8_t *stream;     /* batch of pre-encoded publishes */
	uint32_t stream_off; /* bytes of the batch already sent */
	uint32_t seq;        /* sequence of the next streamed publish */
};

struct sink {
	struct sink_opts o;        /* options */
	int ep;                    /* epoll */
	int lfd;                   /* listening socket */
	int sfd;                   /* signalfd */
	struct sink_conn *conns;   /* by slot */
	uint32_t nconns;           /* slots in use at the high-water mark */
	uint8_t tmpl[1024 + 64];   /* one streamed publish, unstamped */
	uint32_t tmpl_len;         /* its size */
	uint32_t tmpl_payload_off; /* where its payload starts */
	uint32_t per_batch;        /* publishes per stream batch */
	uint64_t received;         /* PUBLISH packets received */
	uint64_t rx_bytes;         /* bytes received */
	uint64_t first_rx_ns;      /* first PUBLISH seen */
	uint64_t last_rx_ns;       /* last read that held a PUBLISH */
	uint64_t streamed;         /* publishes sent by --source */
	uint64_t first_tx_ns;      /* first stream send */
	uint64_t last_tx_ns;       /* last stream send */
	uint64_t accepted;         /* connections accepted */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "starling-sink: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void conn_close(struct sink *s, struct sink_conn *c)
{
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->rx);
	free(c->tx);
	free(c->stream);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void set_out(struct sink *s, struct sink_conn *c, bool on)
{
	if (c->want_out == on)
		return;
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0u),
	                         .data.u64 = (uint64_t)(c - s->conns)};
	if (epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
		die("epoll_ctl");
	c->want_out = on;
}

/* Appends an encoded reply to the connection's output. Returns false if out of memory. */
static bool queue_reply(struct sink_conn *c, const struct st_packet *pkt)
{
	size_t size = st_packet_size(pkt, c->level);
	if (size == 0)
		return false;
	if (c->tx_cap - c->tx_len < size) {
		uint32_t cap = c->tx_cap ? c->tx_cap * 2 : 4096;
		while (cap - c->tx_len < size)
			cap *= 2;
		uint8_t *p = realloc(c->tx, cap);
		if (p == NULL)
			return false;
		c->tx = p;
		c->tx_cap = cap;
	}
	int n = st_encode_packet(pkt, c->level, c->tx + c->tx_len, c->tx_cap - c->tx_len);
	if (n < 0)
		return false;
	c->tx_len += (uint32_t)n;
	return true;
}

static bool reply_ack(struct sink_conn *c, uint8_t type, uint16_t id)
{
	struct st_packet pkt = {.type = type};
	pkt.ack.packet_id = id;
	return queue_reply(c, &pkt);
}

/* Grants every filter the QoS it asked for. */
static bool reply_suback(struct sink_conn *c, const struct st_packet *sub)
{
	uint8_t codes[4096];
	struct st_sub_iter it;
	struct st_sub_entry e;
	uint32_t n = 0;
	st_sub_iter_init(&it, sub);
	while (n < sizeof(codes) && st_sub_iter_next(&it, &e))
		codes[n++] = e.options & ST_SUBOPT_QOS_MASK;
	struct st_packet pkt = {.type = ST_SUBACK};
	pkt.suback.packet_id = sub->subscribe.packet_id;
	pkt.suback.codes = (struct st_bytes){codes, n};
	return queue_reply(c, &pkt);
}

/* Handles one control packet; returns false to close the connection. */
static bool on_control(struct sink_conn *c, const struct st_fixed_header *fh, const uint8_t *body,
                       bool source)
{
	struct st_packet pkt;
	uint8_t level = fh->type == ST_CONNECT ? ST_MQTT_311 : c->level;
	if (st_decode_body(fh, body, level, &pkt) != ST_OK)
		return false;
	switch (fh->type) {
	case ST_CONNECT: {
		c->level = pkt.connect.level;
		struct st_packet ack = {.type = ST_CONNACK};
		return queue_reply(c, &ack);
	}
	case ST_SUBSCRIBE:
		if (!reply_suback(c, &pkt))
			return false;
		c->streaming = source;
		return true;
	case ST_PUBREL:
		return reply_ack(c, ST_PUBCOMP, pkt.ack.packet_id);
	case ST_PINGREQ: {
		struct st_packet pong = {.type = ST_PINGRESP};
		return queue_reply(c, &pong);
	}
	case ST_DISCONNECT:
		return false;
	default:
		return true; /* acks of the stream, UNSUBSCRIBE, ...: ignored */
	}
}

/* A PUBLISH: counted; QoS 1 and 2 acknowledged. */
static bool on_publish(struct sink_conn *c, const struct st_fixed_header *fh, const uint8_t *body)
{
	uint8_t qos = (fh->flags >> 1) & 3u;
	if (qos == 0)
		return true;
	uint32_t off = 2u + (uint32_t)((body[0] << 8) | body[1]);
	if (fh->remaining_len < 2 || off + 2 > fh->remaining_len)
		return false;
	uint16_t id = (uint16_t)((body[off] << 8) | body[off + 1]);
	return reply_ack(c, qos == 1 ? ST_PUBACK : ST_PUBREC, id);
}

/* Parses every whole packet at c->rx; keeps a partial one. Returns false to close. */
static bool parse(struct sink *s, struct sink_conn *c)
{
	uint32_t off = 0;
	uint64_t publishes = 0;
	bool ok = true;
	while (ok && off < c->rx_len) {
		struct st_fixed_header fh;
		int rc = st_decode_fixed_header(c->rx + off, c->rx_len - off, 0, &fh);
		if (rc == ST_ERR_NEED_MORE)
			break;
		if (rc != ST_OK)
			return false;
		uint32_t total = fh.header_len + fh.remaining_len;
		if (total > RX_BYTES)
			return false; /* larger than the read buffer: not a benchmark packet */
		if (total > c->rx_len - off)
			break;
		const uint8_t *body = c->rx + off + fh.header_len;
		if (fh.type == ST_PUBLISH) {
			publishes++;
			ok = on_publish(c, &fh, body);
		} else {
			ok = on_control(c, &fh, body, s->o.source);
		}
		off += total;
	}
	memmove(c->rx, c->rx + off, c->rx_len - off);
	c->rx_len -= off;
	if (publishes > 0) {
		uint64_t t = now_ns();
		if (s->received == 0)
			s->first_rx_ns = t;
		s->last_rx_ns = t;
		s->received += publishes;
	}
	return ok;
}

/* Sends queued replies; returns false on a connection error. */
static bool flush_tx(struct sink_conn *c)
{
	while (c->tx_len > 0) {
		ssize_t n = send(c->fd, c->tx, c->tx_len, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
		memmove(c->tx, c->tx + n, c->tx_len - (size_t)n);
		c->tx_len -= (uint32_t)n;
	}
	return true;
}

/* Restamps the batch: every publish gets the current time and the next sequence. */
static void stamp_batch(struct sink *s, struct sink_conn *c)
{
	uint64_t t = now_ns();
	uint8_t *p = c->stream + s->tmpl_payload_off;
	for (uint32_t i = 0; i < s->per_batch; i++, p += s->tmpl_len) {
		memcpy(p, &t, 8);
		memcpy(p + 12, &c->seq, 4);
		c->seq++;
	}
}

/* Streams batches until the socket is full. Returns false on a connection error. */
static bool stream(struct sink *s, struct sink_conn *c)
{
	uint32_t batch = s->per_batch * s->tmpl_len;
	if (c->stream == NULL) {
		if ((c->stream = malloc(batch)) == NULL)
			return false;
		for (uint32_t i = 0; i < s->per_batch; i++)
			memcpy(c->stream + i * s->tmpl_len, s->tmpl, s->tmpl_len);
		stamp_batch(s, c);
		if (s->first_tx_ns == 0)
			s->first_tx_ns = now_ns();
	}
	for (uint32_t rounds = 0; rounds < 64; rounds++) {
		ssize_t n =
		        send(c->fd, c->stream + c->stream_off, batch - c->stream_off, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
		c->stream_off += (uint32_t)n;
		if (c->stream_off < batch)
			continue;
		s->streamed += s->per_batch;
		s->last_tx_ns = now_ns();
		c->stream_off = 0;
		stamp_batch(s, c);
	}
	return true;
}

/* Reads what is there (a bounded number of times), parses, replies. False: close. */
static bool on_readable(struct sink *s, struct sink_conn *c)
{
	for (uint32_t i = 0; i < READS_PER_EVENT; i++) {
		ssize_t n = recv(c->fd, c->rx + c->rx_len, RX_BYTES - c->rx_len, 0);
		if (n == 0)
			return false;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
		c->rx_len += (uint32_t)n;
		s->rx_bytes += (uint64_t)n;
		if (!parse(s, c))
			return false;
		if ((size_t)n < RX_BYTES / 2)
			break; /* drained, most likely: skip the EAGAIN round trip */
	}
	return true;
}

static bool on_writable(struct sink *s, struct sink_conn *c)
{
	if (!flush_tx(c))
		return false;
	if (c->tx_len == 0 && c->streaming && !stream(s, c))
		return false;
	set_out(s, c, c->tx_len > 0 || c->streaming);
	return true;
}

static void on_accept(struct sink *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				fprintf(stderr, "starling-sink: accept: %s\n", strerror(errno));
			return;
		}
		uint32_t slot = 0;
		while (slot < s->nconns && s->conns[slot].fd >= 0)
			slot++;
		if (slot == CONNS_MAX || (s->conns[slot].rx = malloc(RX_BYTES)) == NULL) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct sink_conn *c = &s->conns[slot];
		c->fd = fd;
		c->level = ST_MQTT_311;
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = slot};
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
			die("epoll_ctl");
		if (slot == s->nconns)
			s->nconns++;
		s->accepted++;
	}
}

static void on_conn_event(struct sink *s, struct sink_conn *c, uint32_t events)
{
	bool ok = true;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		ok = on_readable(s, c);
	if (ok && (c->tx_len > 0 || c->streaming))
		ok = on_writable(s, c);
	if (!ok)
		conn_close(s, c);
}

static int listen_on(const struct sink_opts *o)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(o->port)};
	if (inet_pton(AF_INET, o->host, &sa.sin_addr) != 1) {
		fprintf(stderr, "starling-sink: bad IPv4 address %s\n", o->host);
		exit(2);
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		die("bind");
	if (listen(fd, 4096) != 0)
		die("listen");
	return fd;
}

static void build_template(struct sink *s)
{
	const char *topic = "bench/source";
	struct st_bytes name = {(const uint8_t *)topic, (uint32_t)strlen(topic)};
	size_t head = st_encode_publish_head(s->tmpl, 0, name, 0, s->o.payload);
	memset(s->tmpl + head, 'x', s->o.payload);
	memset(s->tmpl + head, 0, 16); /* time, publisher id 0, sequence: stamped per batch */
	s->tmpl_payload_off = (uint32_t)head;
	s->tmpl_len = (uint32_t)head + s->o.payload;
	s->per_batch = STREAM_BYTES / s->tmpl_len;
	if (s->per_batch == 0)
		s->per_batch = 1;
}

static void report(const struct sink *s)
{
	double rx_s = (double)(s->last_rx_ns - s->first_rx_ns) / 1e9;
	double tx_s = (double)(s->last_tx_ns - s->first_tx_ns) / 1e9;
	printf("{\"accepted\":%llu,\"received\":%llu,\"received_bytes\":%llu,"
	       "\"received_per_s\":%.1f,\"streamed\":%llu,\"streamed_per_s\":%.1f}\n",
	       (unsigned long long)s->accepted, (unsigned long long)s->received,
	       (unsigned long long)s->rx_bytes, rx_s > 0 ? (double)s->received / rx_s : 0.0,
	       (unsigned long long)s->streamed, tx_s > 0 ? (double)s->streamed / tx_s : 0.0);
	fflush(stdout);
}

static void parse_opts(struct sink_opts *o, int argc, char **argv)
{
	static const struct option longs[] = {
	        {"host", required_argument, NULL, 'h'},
	        {"port", required_argument, NULL, 'p'},
	        {"source", no_argument, NULL, 'S'},
	        {"payload", required_argument, NULL, 's'},
	        {"duration", required_argument, NULL, 'd'},
	        {NULL, 0, NULL, 0},
	};
	*o = (struct sink_opts){.host = "127.0.0.1", .port = 1883, .payload = 16};
	int ch;
	while ((ch = getopt_long(argc, argv, "h:p:Ss:d:", longs, NULL)) != -1) {
		switch (ch) {
		case 'h':
			o->host = optarg;
			break;
		case 'p':
			o->port = (uint16_t)atoi(optarg);
			break;
		case 'S':
			o->source = true;
			break;
		case 's':
			o->payload = (uint32_t)atoi(optarg);
			break;
		case 'd':
			o->duration_s = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: starling-sink [-h ADDR] [-p PORT] [--source] "
			                "[--payload 16..1024] [--duration SEC]\n");
			exit(2);
		}
	}
	if (o->payload < 16 || o->payload > 1024 || o->port == 0) {
		fprintf(stderr, "starling-sink: --payload must be 16..1024 and --port non-zero\n");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct sink *s = calloc(1, sizeof(*s));
	struct epoll_event evs[EVENTS_MAX];
	sigset_t mask;
	if (s == NULL || (s->conns = calloc(CONNS_MAX, sizeof(*s->conns))) == NULL)
		die("calloc");
	parse_opts(&s->o, argc, argv);
	for (uint32_t i = 0; i < CONNS_MAX; i++)
		s->conns[i].fd = -1;
	build_template(s);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((s->sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0 || (s->ep = epoll_create1(0)) < 0)
		die("signalfd/epoll_create1");
	s->lfd = listen_on(&s->o);
	struct epoll_event lev = {.events = EPOLLIN, .data.u64 = TAG_LISTEN};
	struct epoll_event sev = {.events = EPOLLIN, .data.u64 = TAG_SIGNAL};
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &lev) != 0 ||
	    epoll_ctl(s->ep, EPOLL_CTL_ADD, s->sfd, &sev) != 0)
		die("epoll_ctl");
	uint64_t end = s->o.duration_s > 0 ? now_ns() + (uint64_t)(s->o.duration_s * 1e9) : 0;
	for (bool running = true; running && (end == 0 || now_ns() < end);) {
		int n = epoll_wait(s->ep, evs, EVENTS_MAX, 100);
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == TAG_LISTEN)
				on_accept(s);
			else if (tag == TAG_SIGNAL)
				running = false;
			else
				on_conn_event(s, &s->conns[tag], evs[i].events);
		}
	}
	report(s);
	return 0;
}
