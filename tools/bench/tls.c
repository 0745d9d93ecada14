/*
 * starling-bench over TLS (--tls): each connection's client SSL runs over two memory BIOs, so
 * the io_uring loop stays as it is: the ciphertext a receive brings is written into the read
 * BIO and the plaintext goes to mqtt.c as if it had been received; at each flush, the
 * plaintext queued for a connection is encrypted at once and its ciphertext replaces it in
 * the buffer about to be sent (one send per connection per iteration, as without TLS). The
 * handshake's messages leave the same way. CONNECT is queued once the handshake is done.
 *
 * Verification as mosquitto's clients: with --cafile/--capath the broker's certificate is
 * checked, and its address too unless --insecure; with --tls alone the link is encrypted but
 * the broker is not authenticated (a load generator's usual choice).
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define BENCH_TLS_PLAIN (4u * 16384u) /* plaintext gathered per bench_mqtt_input call */

/* OpenSSL's reason for the last failure (the queue is per thread, emptied here). */
static const char *tls_reason(char *buf, size_t cap)
{
	unsigned long e = ERR_peek_last_error();

	snprintf(buf, cap, "%s",
	         e && ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "error");
	ERR_clear_error();
	return buf;
}

int bench_tls_prepare(struct bench_shared *sh, char *err, size_t err_len)
{
	const struct bench_opts *o = sh->o;
	SSL_CTX *ctx;
	char why[128];

	if (!o->tls)
		return 0;
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		snprintf(err, err_len, "SSL_CTX_new: %s", tls_reason(why, sizeof(why)));
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, o->tls_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (o->cafile || o->capath) {
		if (SSL_CTX_load_verify_locations(ctx, o->cafile, o->capath) != 1) {
			snprintf(err, err_len, "--cafile/--capath: %s",
			         tls_reason(why, sizeof(why)));
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	if (o->certfile && (SSL_CTX_use_certificate_chain_file(ctx, o->certfile) != 1 ||
	                    SSL_CTX_use_PrivateKey_file(ctx, o->keyfile, SSL_FILETYPE_PEM) != 1)) {
		snprintf(err, err_len, "--cert/--key: %s", tls_reason(why, sizeof(why)));
		goto fail;
	}
	sh->tls_ctx = ctx;
	return 0;
fail:
	SSL_CTX_free(ctx);
	return -1;
}

void bench_tls_fini(struct bench_shared *sh)
{
	SSL_CTX_free(sh->tls_ctx);
	sh->tls_ctx = NULL;
}

void bench_tls_free(struct bench_conn *c)
{
	SSL_free(c->ssl); /* frees both BIOs */
	c->ssl = NULL;
}

/* Queues the ciphertext OpenSSL made (handshake messages) for the next flush. */
static void tls_want_send(struct bench *b, struct bench_conn *c)
{
	if (BIO_ctrl_pending(SSL_get_wbio(c->ssl)) > 0)
		bench_mark_dirty(b, c);
}

void bench_tls_start(struct bench *b, struct bench_conn *c)
{
	BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
	char why[128];
	int r;

	c->ssl = SSL_new(b->sh->tls_ctx);
	if (!c->ssl || !rbio || !wbio)
		bench_fail(b, "client %u: out of memory for TLS", c->index);
	SSL_set_bio(c->ssl, rbio, wbio);
	SSL_set_connect_state(c->ssl);
	if ((b->o->cafile || b->o->capath) && !b->o->insecure)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), b->o->host);
	r = SSL_do_handshake(c->ssl);
	if (r != 1 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
		bench_fail(b, "client %u: TLS handshake: %s", c->index,
		           tls_reason(why, sizeof(why)));
	tls_want_send(b, c);
}

void bench_tls_input(struct bench *b, struct bench_conn *c, const uint8_t *data, uint32_t len,
                     uint64_t now_ns)
{
	char why[128];
	size_t got;

	if (BIO_write(SSL_get_rbio(c->ssl), data, (int)len) != (int)len)
		bench_fail(b, "client %u: out of memory for TLS", c->index);
	if (!SSL_is_init_finished(c->ssl)) {
		int r = SSL_do_handshake(c->ssl);

		if (r != 1 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ) {
			long v = SSL_get_verify_result(c->ssl);

			bench_fail(b, "client %u: TLS handshake: %s", c->index,
			           v != X509_V_OK ? X509_verify_cert_error_string(v)
			                          : tls_reason(why, sizeof(why)));
		}
		tls_want_send(b, c);
		if (r != 1)
			return;
		bench_stream_connected(b, c);
	}
	if (!b->tls_buf && !(b->tls_buf = malloc(BENCH_TLS_PLAIN)))
		bench_fail(b, "out of memory for TLS");
	for (;;) {
		uint32_t used = 0;
		int e = SSL_ERROR_NONE;

		while (BENCH_TLS_PLAIN - used >= 16384u) {
			if (SSL_read_ex(c->ssl, b->tls_buf + used, BENCH_TLS_PLAIN - used, &got) !=
			    1) {
				e = SSL_get_error(c->ssl, 0);
				break;
			}
			used += (uint32_t)got;
		}
		if (used)
			bench_stream_input(b, c, b->tls_buf, used, now_ns);
		if (e == SSL_ERROR_NONE)
			continue;
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_ZERO_RETURN)
			break;
		bench_fail(b, "client %u: TLS: %s", c->index, tls_reason(why, sizeof(why)));
	}
	tls_want_send(b, c);
}

bool bench_tls_seal(struct bench *b, struct bench_conn *c)
{
	struct bench_outbuf *ob = &c->out[c->send_idx ^ 1u];
	BIO *wbio = SSL_get_wbio(c->ssl);
	size_t done = 0, n;
	char why[128];

	if (ob->len) {
		/* Nothing goes out before the handshake: CONNECT is queued after it. */
		if (SSL_write_ex(c->ssl, ob->data, ob->len, &done) != 1 || done != ob->len)
			bench_fail(b, "client %u: TLS write: %s", c->index,
			           tls_reason(why, sizeof(why)));
		ob->len = 0;
	}
	n = BIO_ctrl_pending(wbio);
	if (n == 0)
		return false;
	bench_out_reserve(b, c, (uint32_t)n);
	if (BIO_read(wbio, ob->data, (int)n) != (int)n)
		bench_fail(b, "client %u: TLS: short read of its own output", c->index);
	ob->len = (uint32_t)n;
	return true;
}
