/*
 * TLS connections: ciphertext in through the engine to the MQTT input path, batched
 * plaintext out through the engine to one send, failures counted and logged, and the move of
 * the SSL with a hand-off (see conn_tls.h for the invariants).
 */
#include "conn_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/psk.h"
#include "base/config_bridge.h"
#include "base/log.h"
#include "starling/utf8.h"
#include "worker.h"

/* Ciphertext the engine makes by itself while the peer does not read (KeyUpdate answers,
 * handshake flights) may wait in `wire` up to this much; past it the peer is not reading. */
#define CONN_TLS_WIRE_MAX (256u << 10)
#define CONN_TLS_IOV      64 /* plaintext pieces encrypted per engine call */

static void conn_tls_failed(struct conn *c, int ret);

static int conn_tls_sink(void *ctx, const uint8_t *p, size_t n)
{
	struct conn *c = ctx;

	return obuf_append(&c->tls->wire, p, n) == ST_OK ? 0 : -1;
}

int conn_tls_attach(struct conn *c, struct tls_server *srv)
{
	struct conn_tls *ct = calloc(1, sizeof(*ct));

	if (!ct)
		return ST_ERR_NOMEM;
	tls_conn_init(&ct->t, srv, conn_tls_sink, c);
	ct->wire.acct = &c->w->output_memory;
	c->tls = ct;
	return ST_OK;
}

int conn_tls_init_client(struct conn *c, struct tls_client *cl, const char *host)
{
	struct conn_tls *ct = calloc(1, sizeof(*ct));
	int ret;

	if (!ct) {
		conn_close(c, false, "out of memory");
		return ST_ERR_NOMEM;
	}
	ct->wire.acct = &c->w->output_memory;
	c->tls = ct; /* before the engine starts: its sink writes into ct->wire */
	ret = tls_conn_init_client(&ct->t, cl, host, conn_tls_sink, c);
	if (ret != ST_OK) {
		conn_tls_failed(c, ret);
		return ret;
	}
	conn_want_flush(c);
	return ST_OK;
}

int conn_tls_client_new(struct tls_client *cl, const struct config_bridge *b, char *err,
                        size_t errlen)
{
	struct tls_client_opts o = {
	        .cafile = b->cafile,
	        .capath = b->capath,
	        .certfile = b->certfile,
	        .keyfile = b->keyfile,
	        .version = b->tls_version,
	        .insecure = b->insecure,
	        .alpn = b->alpn,
	        .psk_identity = b->psk_identity,
	        .require_ocsp = b->require_ocsp,
	};
	uint8_t key[AUTH_PSK_KEY_MAX];
	int len, ret;

	if (b->psk_identity) {
		len = b->psk_hex ? auth_psk_hex(b->psk_hex, strlen(b->psk_hex), key, sizeof(key))
		                 : -1;
		if (len < 0) {
			snprintf(err, errlen,
			         "bridge_psk: missing, not hexadecimal, zero or longer than %d "
			         "bytes",
			         AUTH_PSK_KEY_MAX);
			return ST_ERR_CONFIG;
		}
		o.psk_key = key;
		o.psk_key_len = (unsigned)len;
	}
	ret = tls_client_init(cl, &o, err, errlen);
	memset(key, 0, sizeof(key));
	return ret;
}

void conn_tls_drop_unsent(struct conn *c)
{
	if (conn_tls_holds_output(c))
		obuf_reset(&c->out);
}

void conn_tls_destroy(struct conn_tls *ct)
{
	if (!ct)
		return;
	tls_conn_free(&ct->t);
	obuf_release(&ct->wire);
	free(ct);
}

struct conn_tls *conn_tls_detach(struct conn *c)
{
	struct conn_tls *ct = c->tls;

	c->tls = NULL;
	if (ct) {
		/* Sent before the hand-off (conn_check_dead waits for it): nothing to account. */
		obuf_release(&ct->wire);
		ct->wire.acct = NULL;
	}
	return ct;
}

void conn_tls_adopt(struct conn *c, struct conn_tls *ct)
{
	ct->wire.acct = &c->w->output_memory;
	tls_conn_set_sink(&ct->t, conn_tls_sink, c);
	c->tls = ct;
}

/* Plaintext from the engine: up the stack (WebSocket, MQTT), or kept while moving. */
static bool conn_tls_plain(void *ctx, const uint8_t *p, size_t n)
{
	struct conn *c = ctx;

	conn_stream_bytes(c, p, n);
	return c->state != CONN_CLOSING;
}

static void conn_tls_log_established(struct conn *c)
{
	struct worker *w = c->w;

	c->tls->logged = true;
	w->stats.tls_handshakes++;
	if (log_enabled(&w->log, LOG_T_DEBUG))
		log_msg(&w->log, LOG_T_DEBUG, "TLS handshake done on connection %llu: %s, %s.",
		        (unsigned long long)c->id, tls_version_name(&c->tls->t),
		        tls_cipher_name(&c->tls->t));
}

/* A connection whose TLS failed: counted, logged, closed (the alert, if any, goes first). */
static void conn_tls_failed(struct conn *c, int ret)
{
	struct worker *w = c->w;
	const char *why = ret == ST_ERR_NOMEM ? "out of memory" : c->tls->t.why;

	if (!c->tls->t.established) {
		w->stats.tls_handshake_failures++;
		if (log_enabled(&w->log, LOG_T_NOTICE))
			log_msg(&w->log, LOG_T_NOTICE,
			        "TLS handshake failed on connection %llu: %s.",
			        (unsigned long long)c->id, why);
		conn_close(c, false, "TLS handshake failed");
		return;
	}
	if (log_enabled(&w->log, LOG_T_NOTICE))
		log_msg(&w->log, LOG_T_NOTICE, "TLS error on connection %llu: %s.",
		        (unsigned long long)c->id, why);
	conn_close(c, false, "TLS error");
}

void conn_tls_timeout(struct conn *c)
{
	struct worker *w = c->w;

	if (c->tls->t.established)
		return;
	w->stats.tls_handshake_failures++;
	if (log_enabled(&w->log, LOG_T_NOTICE))
		log_msg(&w->log, LOG_T_NOTICE, "TLS handshake failed on connection %llu: %s.",
		        (unsigned long long)c->id,
		        c->tls->t.ssl ? "not finished in time" : "no handshake started in time");
}

/* Feeds ciphertext with plaintext gathered in buf; the outcome handled here. */
static void conn_tls_feed(struct conn *c, const uint8_t *p, size_t n, uint8_t *buf)
{
	struct conn_tls *ct = c->tls;
	int ret = tls_input(&ct->t, p, n, buf, CONN_TLS_PLAIN_BUF, conn_tls_plain, c);

	/* The input may have closed c, or handed it over; ct is still c's until the batch end. */
	if (ct->t.established && !ct->logged) {
		conn_tls_log_established(c);
		/* A client's output queued during the handshake can leave now. */
		if (c->out.total && c->state != CONN_CLOSING)
			conn_want_flush(c);
	}
	if (ret != ST_OK) {
		if (c->state != CONN_CLOSING)
			conn_tls_failed(c, ret);
	} else if (ct->t.peer_closed && c->state != CONN_CLOSING) {
		conn_close(c, false, "closed by client");
	} else if (ct->wire.total > CONN_TLS_WIRE_MAX && c->send_busy) {
		conn_close(c, false, "not reading its output");
	}
	if (ct->wire.total)
		conn_want_flush(c);
}

void conn_tls_input(struct conn *c, const uint8_t *p, size_t n)
{
	struct worker *w = c->w;

	if (!w->tls_buf && !(w->tls_buf = malloc(CONN_TLS_PLAIN_BUF))) {
		conn_close(c, false, "out of memory");
		return;
	}
	conn_tls_feed(c, p, n, w->tls_buf);
}

void conn_tls_drain(struct conn *c, const uint8_t *p, size_t n)
{
	/* Called while the worker's buffer may hold the CONNECT that caused the drain. */
	uint8_t *buf = malloc(CONN_TLS_PLAIN_BUF);

	if (!buf) {
		conn_close(c, false, "out of memory");
		return;
	}
	conn_tls_feed(c, p, n, buf);
	free(buf);
}

/* Encrypts everything queued in `out` into `wire`. */
static int conn_tls_encrypt(struct conn *c, uint8_t *stage)
{
	struct iovec iov[CONN_TLS_IOV];
	uint64_t done = 0;

	while (done < c->out.total) {
		unsigned n = obuf_iov(&c->out, done, iov, CONN_TLS_IOV);
		int ret = tls_encrypt(&c->tls->t, iov, n, stage);

		if (ret != ST_OK)
			return ret;
		for (unsigned i = 0; i < n; i++)
			done += iov[i].iov_len;
	}
	obuf_reset(&c->out);
	return ST_OK;
}

void conn_tls_flush(struct conn *c, bool close_notify)
{
	struct conn_tls *ct = c->tls;
	struct worker *w = c->w;
	struct obuf tmp;
	int ret;

	/* A client's first packets wait for its handshake (conn_tls.h). */
	if (c->out.total && !conn_tls_holds_output(c)) {
		if (!w->tls_stage && !(w->tls_stage = malloc(TLS_RECORD_MAX))) {
			conn_close(c, false, "out of memory");
			return;
		}
		ret = conn_tls_encrypt(c, w->tls_stage);
		if (ret != ST_OK) {
			obuf_reset(&c->out);
			conn_tls_failed(c, ret);
			return;
		}
	}
	if (close_notify) {
		ct->close_pending = false;
		tls_close_notify(&ct->t);
	}
	if (ct->wire.total == 0)
		return;
	tmp = c->sending;
	c->sending = ct->wire;
	ct->wire = tmp;
	c->sent = 0;
	c->send_since_ms = w->now_ms;
	conn_submit_send(c);
}

void conn_tls_closing(struct conn *c)
{
	if (!c->tls->t.established)
		return; /* no close_notify before the handshake (tls_close_notify) */
	c->tls->close_pending = true;
	conn_want_flush(c);
}

int conn_tls_username(const struct conn *c, char *out, size_t cap, bool *applies)
{
	const struct tls_server *srv = c->tls ? c->tls->t.srv : NULL;
	const char *id;
	size_t n;

	*applies = srv && (srv->use_identity || srv->use_subject);
	if (!*applies)
		return -1;
	if (!srv->psk)
		return tls_peer_name(&c->tls->t, srv->use_subject, out, cap);
	/* A PSK listener: the identity is the username (Mosquitto), which must be UTF-8; a
	 * client that came with a certificate instead has none. */
	id = srv->use_identity ? tls_psk_identity(&c->tls->t) : NULL;
	if (!id || (n = strlen(id)) >= cap || st_utf8_check((const uint8_t *)id, n) != ST_OK)
		return -1;
	memcpy(out, id, n + 1);
	return (int)n;
}

unsigned conn_tls_psk(void *conn, const char *identity, uint8_t *key, unsigned cap)
{
	struct conn *c = conn;
	const struct auth_domain *d = auth_domain_of(c->w->auth, c->listener);
	const struct auth_psk_entry *e = auth_psk_find(d->psk, identity);

	if (!e || e->key_len > cap) {
		if (log_enabled(&c->w->log, LOG_T_NOTICE))
			log_msg(&c->w->log, LOG_T_NOTICE,
			        "TLS-PSK identity \"%.128s\" unknown on connection %llu.", identity,
			        (unsigned long long)c->id);
		return 0;
	}
	memcpy(key, e->key, e->key_len);
	return e->key_len;
}
