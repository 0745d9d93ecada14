/*
 * Tests of the broker's TLS glue for connections it makes itself (src/broker/conn_tls.c,
 * conn_tls_init_client), on a real loopback TCP socket and a worker's real ring: a socket
 * connected through ring_connect becomes a struct conn, its TLS client starts, and the test
 * plays the remote broker with the engine's server side on the other end of the socket.
 *
 * The worker is the part of one a connection touches (its ring, connection timers, lists and
 * counters, a zeroed broker), not a running broker: the loop here polls the ring and flushes
 * the worker's flush list as its batch end does, on both back-ends.
 *
 * What is checked: the ClientHello leaves at the first flush; bytes queued before the
 * handshake (a bridge's CONNECT) wait and then leave encrypted; a server certificate for
 * another name fails the handshake, counted, with the connection closed and its held bytes
 * never sent; a connection closed during its handshake drops what it held; the connection
 * then ends cleanly (its last completion, the dead list).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <openssl/err.h>

#include "base/config.h"
#include "base/config_bridge.h"
#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/conn_tls.h"
#include "broker/worker.h"
#include "io/ring.h"
#include "io/tls.h"
#include "starling/error.h"
#include "testutil.h"
#include "tls_certs.h"

static enum ring_backend backend;

/* A worker with what a connection uses. */
static struct worker *worker_up(void)
{
	struct broker *b = calloc(1, sizeof(*b));
	struct worker *w = calloc(1, sizeof(*w));
	struct ring_params p = {.sq_entries = 64,
	                        .cq_entries = 256,
	                        .buf_count = 16,
	                        .buf_size = 16384,
	                        .backend = backend};
	char err[256];

	if (!b || !w)
		abort();
	config_defaults(&b->cfg);
	b->nworkers = 1;
	w->b = b;
	w->nworkers = 1;
	w->output_max = UINT64_MAX;
	CU_ASSERT_FATAL(ring_init(&w->ring, &p, err, sizeof(err)) == 0);
	CU_ASSERT_FATAL(wheel_init(&w->conn_timers, 64, 250, 0) == ST_OK);
	return w;
}

static void worker_down(struct worker *w)
{
	while (w->dead) {
		struct conn *c = w->dead;

		w->dead = c->next;
		conn_free(c);
	}
	ring_exit(&w->ring);
	wheel_fini(&w->conn_timers);
	free(w->tls_buf);
	free(w->tls_stage);
	free(w->b);
	free(w);
}

/* The worker's batch end, as far as connections go: each on the flush list is flushed. */
static void batch_end(struct worker *w)
{
	struct conn *c = w->flush_list;

	w->flush_list = NULL;
	while (c) {
		struct conn *next = c->flush_next;

		c->on_flush_list = false;
		c->flush_next = NULL;
		conn_flush(c);
		c = next;
	}
}

/* A connect's completion. */
struct connector {
	struct ring_io io;
	int32_t res;
	bool done;
};

static void on_connect(struct ring *r, struct ring_io *io, const struct ring_cqe *cqe)
{
	struct connector *k = (struct connector *)io;

	(void)r;
	CU_ASSERT_EQUAL(cqe->op, RING_OP_CONNECT);
	k->res = cqe->res;
	k->done = true;
}

/* Connects a socket through the worker's ring; *peer is the accepted end (non-blocking). */
static int connect_through_ring(struct worker *w, int *peer)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	struct connector k = {.io.fn = on_connect};
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (l < 0 || fd < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(l, 4) != 0 || getsockname(l, (struct sockaddr *)&a, &len) != 0)
		abort();
	ring_connect(&w->ring, &k.io, fd, (struct sockaddr *)&a, sizeof(a));
	for (int i = 0; i < 200 && !k.done; i++)
		ring_poll(&w->ring, 10);
	CU_ASSERT_FATAL(k.done && k.res == 0);
	*peer = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	CU_ASSERT_FATAL(*peer >= 0);
	close(l);
	return fd;
}

/* The remote broker: the engine's server side on the peer socket. */
struct remote {
	struct tls_conn t;
	struct bytes wire, got;
	uint8_t buf[4 * TLS_RECORD_MAX];
	int fd;
	int last;      /* the last tls_input result */
	bool eof;      /* the socket said EOF */
	size_t rx_raw; /* ciphertext bytes received */
};

/* Reads what arrived, decrypts it, sends what the engine answered. */
static void remote_step(struct remote *rm)
{
	uint8_t in[16384];
	ssize_t n = -1;

	while (!rm->eof && (n = read(rm->fd, in, sizeof(in))) != 0) {
		if (n < 0) {
			if (errno != EAGAIN)
				rm->eof = true;
			break;
		}
		rm->rx_raw += (size_t)n;
		if (rm->last == ST_OK)
			rm->last = tls_input(&rm->t, in, (size_t)n, rm->buf, sizeof(rm->buf),
			                     on_plain, &rm->got);
	}
	if (n == 0)
		rm->eof = true;
	if (rm->wire.len) {
		CU_ASSERT(write(rm->fd, rm->wire.p, rm->wire.len) == (ssize_t)rm->wire.len);
		rm->wire.len = 0;
	}
}

/* Runs the loop and the remote until pred or about two seconds. */
static void run_until(struct worker *w, struct remote *rm,
                      bool (*pred)(struct worker *, struct remote *))
{
	for (int i = 0; i < 400 && !pred(w, rm); i++) {
		ring_poll(&w->ring, 5);
		batch_end(w);
		remote_step(rm);
	}
}

static bool got_hello(struct worker *w, struct remote *rm)
{
	(void)w;
	return rm->got.len >= 5 || rm->last != ST_OK;
}

static bool conn_gone(struct worker *w, struct remote *rm)
{
	/* The remote closes once the connection has shut its side (FIN) or failed. */
	if (rm->eof && rm->fd >= 0) {
		close(rm->fd);
		rm->fd = -1;
	}
	return w->dead != NULL;
}

static void remote_init(struct remote *rm, struct tls_server *srv, int fd)
{
	memset(rm, 0, sizeof(*rm));
	tls_conn_init(&rm->t, srv, sink, &rm->wire);
	rm->fd = fd;
}

static void remote_fini(struct remote *rm)
{
	tls_conn_free(&rm->t);
	free(rm->wire.p);
	free(rm->got.p);
	if (rm->fd >= 0)
		close(rm->fd);
	ERR_clear_error();
}

static void server_up(struct tls_server *srv)
{
	struct config_tls c;
	char err[256];

	memset(&c, 0, sizeof(c));
	snprintf(c.certfile, sizeof(c.certfile), "%s", path("server.crt"));
	snprintf(c.keyfile, sizeof(c.keyfile), "%s", path("server.key"));
	snprintf(c.cafile, sizeof(c.cafile), "%s", path("ca.crt"));
	c.require_certificate = true;
	CU_ASSERT_FATAL(tls_server_init(srv, &c, err, sizeof(err)) == ST_OK);
}

static void client_up(struct tls_client *cl)
{
	struct tls_client_opts o = {.cafile = path("ca.crt"),
	                            .certfile = path("client.crt"),
	                            .keyfile = path("client.key")};
	char err[256];

	CU_ASSERT_FATAL(tls_client_init(cl, &o, err, sizeof(err)) == ST_OK);
}

static void test_handshake_then_held_output(void)
{
	struct worker *w = worker_up();
	struct tls_server srv;
	struct tls_client cl;
	struct remote *rm = malloc(sizeof(*rm));
	struct conn *c;
	int peer, fd;
	char name[64];

	server_up(&srv);
	client_up(&cl);
	fd = connect_through_ring(w, &peer);
	remote_init(rm, &srv, peer);
	c = conn_new(w, fd);
	CU_ASSERT_FATAL(c != NULL);
	CU_ASSERT_EQUAL_FATAL(conn_tls_init_client(c, &cl, "broker.test"), ST_OK);
	/* What the bridge queues at once (its CONNECT) waits for the handshake. */
	CU_ASSERT_EQUAL(obuf_append(&c->out, (const uint8_t *)"HELLO", 5), ST_OK);
	conn_want_flush(c);
	CU_ASSERT_TRUE(conn_tls_holds_output(c));
	batch_end(w);
	CU_ASSERT_TRUE(c->send_busy); /* the ClientHello */
	CU_ASSERT_EQUAL(c->out.total, 5);
	run_until(w, rm, got_hello);
	CU_ASSERT_EQUAL(rm->last, ST_OK);
	CU_ASSERT_TRUE(c->tls->t.established);
	CU_ASSERT_FALSE(conn_tls_holds_output(c));
	CU_ASSERT(rm->got.len == 5 && memcmp(rm->got.p, "HELLO", 5) == 0);
	CU_ASSERT_EQUAL(w->stats.tls_handshakes, 1);
	CU_ASSERT(tls_peer_name(&rm->t, false, name, sizeof(name)) > 0);
	CU_ASSERT_STRING_EQUAL(name, "bridge one");
	/* A graceful close: close_notify, FIN, the remote's EOF, the last completion. */
	conn_close(c, true, "test over");
	run_until(w, rm, conn_gone);
	CU_ASSERT_PTR_EQUAL(w->dead, c);
	CU_ASSERT_TRUE(rm->t.peer_closed);
	remote_fini(rm);
	free(rm);
	worker_down(w);
	tls_client_fini(&cl);
	tls_server_fini(&srv);
}

static void test_wrong_host_refused(void)
{
	struct worker *w = worker_up();
	struct tls_server srv;
	struct tls_client cl;
	struct remote *rm = malloc(sizeof(*rm));
	struct conn *c;
	int peer, fd;

	server_up(&srv);
	client_up(&cl);
	fd = connect_through_ring(w, &peer);
	remote_init(rm, &srv, peer);
	c = conn_new(w, fd);
	CU_ASSERT_EQUAL_FATAL(conn_tls_init_client(c, &cl, "elsewhere.test"), ST_OK);
	CU_ASSERT_EQUAL(obuf_append(&c->out, (const uint8_t *)"SECRET", 6), ST_OK);
	conn_want_flush(c);
	run_until(w, rm, conn_gone);
	CU_ASSERT_PTR_EQUAL(w->dead, c);
	CU_ASSERT_EQUAL(c->state, CONN_CLOSING);
	CU_ASSERT_EQUAL(w->stats.tls_handshake_failures, 1);
	CU_ASSERT_EQUAL(w->stats.tls_handshakes, 0);
	CU_ASSERT(strstr(c->tls->t.why, "hostname mismatch") != NULL);
	/* The held bytes never left, in any form; the remote heard the client's alert. */
	CU_ASSERT_EQUAL(rm->got.len, 0);
	CU_ASSERT_EQUAL(rm->last, ST_ERR_PROTOCOL);
	remote_fini(rm);
	free(rm);
	worker_down(w);
	tls_client_fini(&cl);
	tls_server_fini(&srv);
}

static void test_closed_during_handshake(void)
{
	struct worker *w = worker_up();
	struct tls_server srv;
	struct tls_client cl;
	struct remote *rm = malloc(sizeof(*rm));
	struct conn *c;
	int peer, fd;

	server_up(&srv);
	client_up(&cl);
	fd = connect_through_ring(w, &peer);
	remote_init(rm, &srv, peer);
	c = conn_new(w, fd);
	CU_ASSERT_EQUAL_FATAL(conn_tls_init_client(c, &cl, "broker.test"), ST_OK);
	CU_ASSERT_EQUAL(obuf_append(&c->out, (const uint8_t *)"HELLO", 5), ST_OK);
	conn_want_flush(c);
	batch_end(w);
	conn_close(c, false, "bridge stopped");
	CU_ASSERT_EQUAL(c->out.total, 0);
	run_until(w, rm, conn_gone);
	CU_ASSERT_PTR_EQUAL(w->dead, c);
	CU_ASSERT_EQUAL(rm->got.len, 0);
	remote_fini(rm);
	free(rm);
	worker_down(w);
	tls_client_fini(&cl);
	tls_server_fini(&srv);
}

/* A bridge's options into a client context: files, OCSP, PSK (hex as psk_file), refusals. */
static void test_bridge_options(void)
{
	struct config_bridge *b = calloc(1, sizeof(*b));
	struct tls_client cl;
	char err[256];

	CU_ASSERT_FATAL(b != NULL);
	b->tls = true;
	snprintf(b->cafile, sizeof(b->cafile), "%s", path("ca.crt"));
	snprintf(b->certfile, sizeof(b->certfile), "%s", path("client.crt"));
	snprintf(b->keyfile, sizeof(b->keyfile), "%s", path("client.key"));
	b->tls_version = CONFIG_TLS_V12;
	CU_ASSERT_EQUAL(conn_tls_client_new(&cl, b, err, sizeof(err)), ST_OK);
	CU_ASSERT_FALSE(cl.psk);
	tls_client_fini(&cl);
	b->alpn = (char *)"mqtt";
	b->insecure = true;
	CU_ASSERT_EQUAL(conn_tls_client_new(&cl, b, err, sizeof(err)), ST_OK);
	CU_ASSERT_TRUE(cl.insecure);
	tls_client_fini(&cl);
	b->require_ocsp = true;
	CU_ASSERT_EQUAL(conn_tls_client_new(&cl, b, err, sizeof(err)), ST_OK);
	CU_ASSERT_TRUE(cl.require_ocsp);
	tls_client_fini(&cl);
	b->require_ocsp = false;
	snprintf(b->keyfile, sizeof(b->keyfile), "%s", path("nowhere.key"));
	CU_ASSERT_EQUAL(conn_tls_client_new(&cl, b, err, sizeof(err)), ST_ERR_CONFIG);
	CU_ASSERT(strstr(err, "nowhere.key") != NULL);
	/* PSK: the key decoded as Mosquitto does ("000a0b" is 00 0a 0b). */
	memset(b, 0, sizeof(*b));
	b->psk_identity = (char *)"edge-1";
	b->psk_hex = (char *)"000a0b";
	CU_ASSERT_EQUAL(conn_tls_client_new(&cl, b, err, sizeof(err)), ST_OK);
	CU_ASSERT_TRUE(cl.psk);
	CU_ASSERT_STRING_EQUAL(cl.psk_identity, "edge-1");
	CU_ASSERT_EQUAL(cl.psk_key_len, 3);
	CU_ASSERT(memcmp(cl.psk_key, "\x00\x0a\x0b", 3) == 0);
	tls_client_fini(&cl);
	b->psk_hex = (char *)"0xzz";
	CU_ASSERT_EQUAL(conn_tls_client_new(&cl, b, err, sizeof(err)), ST_ERR_CONFIG);
	CU_ASSERT(strstr(err, "bridge_psk") != NULL);
	b->psk_hex = NULL;
	CU_ASSERT_EQUAL(conn_tls_client_new(&cl, b, err, sizeof(err)), ST_ERR_CONFIG);
	free(b);
}

#define BOTH(fn)                                                                                   \
	static void fn##_uring(void)                                                               \
	{                                                                                          \
		backend = RING_BACKEND_IO_URING;                                                   \
		fn();                                                                              \
	}                                                                                          \
	static void fn##_epoll(void)                                                               \
	{                                                                                          \
		backend = RING_BACKEND_EPOLL;                                                      \
		fn();                                                                              \
	}

BOTH(test_handshake_then_held_output)
BOTH(test_wrong_host_refused)
BOTH(test_closed_during_handshake)

int main(void)
{
	static const struct tu_test uring[] = {
	        {"handshake, then the held output", test_handshake_then_held_output_uring},
	        {"another host's certificate refused", test_wrong_host_refused_uring},
	        {"closed during the handshake", test_closed_during_handshake_uring},
	        {NULL, NULL},
	};
	static const struct tu_test epoll[] = {
	        {"handshake, then the held output", test_handshake_then_held_output_epoll},
	        {"another host's certificate refused", test_wrong_host_refused_epoll},
	        {"closed during the handshake", test_closed_during_handshake_epoll},
	        {NULL, NULL},
	};

	static const struct tu_test options[] = {
	        {"a bridge's options", test_bridge_options},
	        {NULL, NULL},
	};

	if (tls_certs_init() != 0)
		return 1;
	tu_add_suite("conn_tls client context", options);
	tu_add_suite("conn_tls client (io_uring)", uring);
	tu_add_suite("conn_tls client (epoll)", epoll);
	{
		int ret = tu_run_registry();

		return tls_certs_fini() != 0 ? 1 : ret;
	}
}
