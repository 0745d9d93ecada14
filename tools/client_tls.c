/*
 * The tools' client over TLS, as mosquitto_pub/mosquitto_sub do it: --cafile/--capath (the CAs
 * that verify the broker, and what turns TLS on), --cert/--key (a client certificate),
 * --insecure (no check that the certificate names the host), --tls-version (the lowest
 * version, Mosquitto's meaning).
 *
 * OpenSSL runs over the socket itself (the client needs no batching), which is made
 * non-blocking so that the transport keeps its rule of never blocking on a write while the
 * broker may be blocked on us: a record OpenSSL cannot write yet waits in poll() while the
 * broker's bytes are read. Bytes OpenSSL has decrypted but not handed out (SSL_pending) are
 * taken before the next poll, which cannot see them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "starling/error.h"
#include "client_int.h"

#define TLS_HANDSHAKE_MS 10000 /* a broker that does not finish the handshake in this time */

/* OpenSSL's reason for the last failure, kept for client_error() (the queue is emptied). */
static int tls_failed(struct client *c, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;

	if (v != X509_V_OK)
		snprintf(c->tls_why, sizeof(c->tls_why), "%s: certificate verify failed: %s", what,
		         X509_verify_cert_error_string(v));
	else if (e)
		snprintf(c->tls_why, sizeof(c->tls_why), "%s: %s", what,
		         ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "error");
	else
		snprintf(c->tls_why, sizeof(c->tls_why), "%s: the connection was closed", what);
	ERR_clear_error();
	return client_fail(c, ST_ERR_SYS, c->tls_why);
}

static SSL_CTX *tls_ctx(struct client *c)
{
	const struct client_config *cfg = &c->cfg;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx,
	                              cfg->tls_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(ctx, cfg->cafile, cfg->capath) != 1) {
		snprintf(c->tls_why, sizeof(c->tls_why), "Unable to load CA certificates from %s",
		         cfg->cafile ? cfg->cafile : cfg->capath);
		goto fail;
	}
	if (cfg->certfile &&
	    (SSL_CTX_use_certificate_chain_file(ctx, cfg->certfile) != 1 ||
	     SSL_CTX_use_PrivateKey_file(ctx, cfg->keyfile, SSL_FILETYPE_PEM) != 1 ||
	     SSL_CTX_check_private_key(ctx) != 1)) {
		snprintf(c->tls_why, sizeof(c->tls_why),
		         "Unable to load client certificate %s or key %s", cfg->certfile,
		         cfg->keyfile);
		goto fail;
	}
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

/* Waits for what OpenSSL asked (read or write) after a retry, up to deadline. */
static int tls_wait(struct client *c, int ssl_err, int64_t deadline_ms)
{
	struct pollfd p = {.fd = c->fd,
	                   .events = ssl_err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN};
	int64_t left = deadline_ms - client_now_ms();
	int n;

	if (left <= 0)
		return client_fail(c, ST_ERR_SYS, "Timed out during the TLS handshake.");
	do {
		n = poll(&p, 1, (int)left);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? client_fail_sys(c, errno) : ST_OK;
}

/* The name the broker's certificate must carry: an address or a host name. */
static void tls_expect_host(struct client *c)
{
	const char *host = c->cfg.host;
	unsigned char addr[16];
	bool ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;

	if (!ip)
		SSL_set_tlsext_host_name(c->ssl, host); /* SNI: names only */
	if (c->cfg.insecure)
		return;
	if (ip)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host);
	else
		SSL_set1_host(c->ssl, host);
}

int client_tls_start(struct client *c)
{
	int64_t deadline = client_now_ms() + TLS_HANDSHAKE_MS;
	SSL_CTX *ctx = tls_ctx(c);
	int flags = fcntl(c->fd, F_GETFL);

	if (!ctx)
		return client_fail(c, ST_ERR_SYS, c->tls_why[0] ? c->tls_why : "SSL_CTX_new");
	c->ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL keeps its reference */
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
		return tls_failed(c, "SSL_new");
	if (flags < 0 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return client_fail_sys(c, errno);
	tls_expect_host(c);
	for (;;) {
		int r = SSL_connect(c->ssl), e, rc;

		if (r == 1)
			return ST_OK;
		e = SSL_get_error(c->ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return tls_failed(c, "TLS handshake");
		if ((rc = tls_wait(c, e, deadline)) < 0)
			return rc;
	}
}

ssize_t client_tls_recv(struct client *c, uint8_t *buf, size_t len)
{
	size_t got = 0;
	int e;

	if (SSL_read_ex(c->ssl, buf, len, &got) == 1)
		return (ssize_t)got;
	e = SSL_get_error(c->ssl, 0);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		return 0;
	}
	/* A broker that closes without close_notify (it refused us) reads as EOF, as in plain. */
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
		ERR_clear_error();
		return 0;
	}
	tls_failed(c, "TLS");
	errno = EPROTO;
	return -1;
}

ssize_t client_tls_send(struct client *c, const uint8_t *buf, size_t len)
{
	size_t done = 0;
	int e;

	if (SSL_write_ex(c->ssl, buf, len, &done) == 1)
		return (ssize_t)done;
	e = SSL_get_error(c->ssl, 0);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	tls_failed(c, "TLS");
	errno = EPIPE;
	return -1;
}

bool client_tls_pending(const struct client *c)
{
	return c->ssl && SSL_pending(c->ssl) > 0;
}

void client_tls_close(struct client *c, bool notify)
{
	if (!c->ssl)
		return;
	if (notify)
		SSL_shutdown(c->ssl); /* close_notify; no wait for the broker's */
	SSL_free(c->ssl);
	c->ssl = NULL;
	ERR_clear_error();
}
