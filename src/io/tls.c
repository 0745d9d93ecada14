/*
 * The TLS engine: SSL_CTX construction from a listener's options, the memory BIO, the
 * handshake and record loop over caller-provided bytes, batch encryption, certificate names,
 * and the kernel TLS probe. See tls.h for the model (who owns what, threads, memory).
 *
 * Expected workload: a handshake per connection (the costly part, a few hundred microseconds
 * of CPU), then small records both ways; output is encrypted once per connection per loop
 * iteration, so a fan-out batch of many small PUBLISH packets becomes one or a few 16 KiB
 * records and one send.
 */
#include "tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "starling/error.h"
#include "tls_impl.h"

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

/* OpenSSL's last error as a short reason, and the queue emptied (it is per thread). */
const char *tls_reason(char *buf, size_t cap)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	if (r)
		snprintf(buf, cap, "%s", r);
	else if (e)
		ERR_error_string_n(e, buf, cap);
	else
		snprintf(buf, cap, "unknown error");
	ERR_clear_error();
	return buf;
}

/* Fails with "option PATH: reason"; a file that cannot be opened says so plainly. */
int tls_file_error(const char *opt, const char *path, char *err, size_t errlen)
{
	char why[128];
	FILE *f = fopen(path, "r");

	if (!f) {
		ERR_clear_error();
		snprintf(err, errlen, "%s %s: %s", opt, path, strerror(errno));
	} else {
		fclose(f);
		snprintf(err, errlen, "%s %s: %s", opt, path, tls_reason(why, sizeof(why)));
	}
	return ST_ERR_CONFIG;
}

static int tls_ctx_verify(SSL_CTX *ctx, const struct config_tls *c, char *err, size_t errlen)
{
	const char *cafile = c->cafile[0] ? c->cafile : NULL;
	const char *capath = c->capath[0] ? c->capath : NULL;

	if ((cafile || capath) && SSL_CTX_load_verify_locations(ctx, cafile, capath) != 1)
		return tls_file_error(cafile ? "cafile" : "capath", cafile ? cafile : capath, err,
		                      errlen);
	if (c->require_certificate) {
		if (!cafile && !capath) {
			snprintf(err, errlen,
			         "require_certificate needs cafile or capath to verify clients "
			         "with");
			return ST_ERR_CONFIG;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	if (c->crlfile[0]) {
		X509_STORE *store = SSL_CTX_get_cert_store(ctx);
		X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());

		if (!lookup || X509_load_crl_file(lookup, c->crlfile, X509_FILETYPE_PEM) <= 0)
			return tls_file_error("crlfile", c->crlfile, err, errlen);
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	}
	return ST_OK;
}

/*
 * OpenSSL caches each certificate's decoded extensions inside the X509 object the first time
 * a verification looks at them. Workers verify clients against the same shared CA and server
 * certificates, so the cache is filled here, before any worker sees the context: otherwise
 * two handshakes on two threads race to fill it (ThreadSanitizer sees OpenSSL 3.0 write the
 * cache while another thread reads it). Certificates found through capath are loaded during
 * handshakes, under OpenSSL's own locks, and cannot be prepared here.
 */
void tls_ctx_warm(SSL_CTX *ctx)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
	STACK_OF(X509) *chain = NULL;
	X509 *cert = SSL_CTX_get0_certificate(ctx);

	for (int i = 0; objs && i < sk_X509_OBJECT_num(objs); i++) {
		X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));

		if (x)
			X509_check_purpose(x, -1, 0);
	}
	if (cert)
		X509_check_purpose(cert, -1, 0);
	if (SSL_CTX_get0_chain_certs(ctx, &chain) == 1)
		for (int i = 0; chain && i < sk_X509_num(chain); i++)
			X509_check_purpose(sk_X509_value(chain, i), -1, 0);
	ERR_clear_error();
}

/* The key of a PSK handshake, from the caller's table (tls.h, tls_psk_fn). */
static unsigned int tls_psk_cb(SSL *ssl, const char *identity, unsigned char *psk,
                               unsigned int max_psk_len)
{
	struct tls_conn *t = SSL_get_app_data(ssl);

	if (!t || !identity || !t->srv->psk)
		return 0;
	return t->srv->psk(t->sink_ctx, identity, psk, max_psk_len);
}

/* TLS-PSK on ctx: the callback, the hint, TLS 1.2 at most (Mosquitto turns TLS 1.3 off when
 * PSK keys are in use). */
static int tls_ctx_psk(SSL_CTX *ctx, const struct tls_server *s, char *err, size_t errlen)
{
	char why[128];

	if (s->cfg.version == CONFIG_TLS_V13) {
		snprintf(err, errlen, "tls_version tlsv1.3 with psk_hint: TLS-PSK is TLS 1.2 only");
		return ST_ERR_CONFIG;
	}
	SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_psk_server_callback(ctx, tls_psk_cb);
	if (s->psk_hint[0] && SSL_CTX_use_psk_identity_hint(ctx, s->psk_hint) != 1) {
		snprintf(err, errlen, "psk_hint: %s", tls_reason(why, sizeof(why)));
		return ST_ERR_CONFIG;
	}
	return ST_OK;
}

/* The certificate and its key, checked to match. */
int tls_ctx_cert(SSL_CTX *ctx, const char *certfile, const char *keyfile, char *err, size_t errlen)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, certfile) != 1)
		return tls_file_error("certfile", certfile, err, errlen);
	if (SSL_CTX_use_PrivateKey_file(ctx, keyfile, SSL_FILETYPE_PEM) != 1)
		return tls_file_error("keyfile", keyfile, err, errlen);
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "keyfile %s is not the key of certfile %s", keyfile,
		         certfile);
		return ST_ERR_CONFIG;
	}
	return ST_OK;
}

/* A new SSL_CTX from the listener's options, or NULL with err filled. */
static SSL_CTX *tls_ctx_new(const struct tls_server *s, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "starling";
	const struct config_tls *c = &s->cfg;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char why[128];

	if (!ctx) {
		snprintf(err, errlen, "SSL_CTX_new: %s", tls_reason(why, sizeof(why)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, c->version == CONFIG_TLS_V13 ? TLS1_3_VERSION
	                                                                : TLS1_2_VERSION);
	/* Renegotiation would let a client make the server redo a handshake at will. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Sessions resumed with a client certificate need an id context (OpenSSL refuses). */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	if (c->ciphers[0] && SSL_CTX_set_cipher_list(ctx, c->ciphers) != 1) {
		snprintf(err, errlen, "ciphers %s: %s", c->ciphers, tls_reason(why, sizeof(why)));
		goto fail;
	}
	if (c->ciphers_tls13[0] && SSL_CTX_set_ciphersuites(ctx, c->ciphers_tls13) != 1) {
		snprintf(err, errlen, "ciphers_tls1.3 %s: %s", c->ciphers_tls13,
		         tls_reason(why, sizeof(why)));
		goto fail;
	}
	/* A PSK listener may have no certificate: it then does PSK cipher suites only. */
	if ((!s->psk || c->certfile[0] || c->keyfile[0]) &&
	    tls_ctx_cert(ctx, c->certfile, c->keyfile, err, errlen) != ST_OK)
		goto fail;
	if (s->psk && tls_ctx_psk(ctx, s, err, errlen) != ST_OK)
		goto fail;
	if (tls_ctx_verify(ctx, c, err, errlen) != ST_OK)
		goto fail;
	tls_ctx_warm(ctx);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* --- the memory BIO ------------------------------------------------------------------------ */

static int tls_bio_write(BIO *b, const char *p, size_t n, size_t *written)
{
	struct tls_conn *t = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (t->sink(t->sink_ctx, (const uint8_t *)p, n) != 0)
		return 0;
	*written = n;
	return 1;
}

static int tls_bio_read(BIO *b, char *out, size_t cap, size_t *got)
{
	struct tls_conn *t = BIO_get_data(b);
	size_t n = t->in_len < cap ? t->in_len : cap;

	BIO_clear_retry_flags(b);
	if (n == 0) {
		/* Everything received so far was taken: the next receive brings more. */
		BIO_set_retry_read(b);
		return 0;
	}
	memcpy(out, t->in, n);
	t->in += n;
	t->in_len -= n;
	*got = n;
	return 1;
}

static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	/* Records reach the sink as they are written: there is nothing to flush. */
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int tls_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

BIO_METHOD *tls_bio_method_new(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "starling");

	if (m &&
	    (!BIO_meth_set_write_ex(m, tls_bio_write) || !BIO_meth_set_read_ex(m, tls_bio_read) ||
	     !BIO_meth_set_ctrl(m, tls_bio_ctrl) || !BIO_meth_set_create(m, tls_bio_create))) {
		BIO_meth_free(m);
		m = NULL;
	}
	return m;
}

/* --- listeners ----------------------------------------------------------------------------- */

int tls_server_init(struct tls_server *s, const struct config_tls *cfg, char *err, size_t errlen)
{
	return tls_server_init_psk(s, cfg, NULL, NULL, err, errlen);
}

int tls_server_init_psk(struct tls_server *s, const struct config_tls *cfg, const char *psk_hint,
                        tls_psk_fn psk, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->psk = psk;
	if (psk_hint)
		snprintf(s->psk_hint, sizeof(s->psk_hint), "%s", psk_hint);
	s->use_identity = cfg->use_identity_as_username;
	s->use_subject = cfg->use_subject_as_username && !s->use_identity;
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		snprintf(err, errlen, "pthread_mutex_init failed");
		return ST_ERR_SYS;
	}
	s->lock_ready = true;
	s->bio_method = tls_bio_method_new();
	if (!s->bio_method) {
		snprintf(err, errlen, "out of memory");
		return ST_ERR_NOMEM;
	}
	s->ctx = tls_ctx_new(s, err, errlen);
	return s->ctx ? ST_OK : ST_ERR_CONFIG;
}

int tls_server_reload(struct tls_server *s, char *err, size_t errlen)
{
	SSL_CTX *ctx = tls_ctx_new(s, err, errlen), *old;

	if (!ctx)
		return ST_ERR_CONFIG;
	pthread_mutex_lock(&s->lock);
	old = s->ctx;
	s->ctx = ctx;
	pthread_mutex_unlock(&s->lock);
	/* Connections made with the old context hold their own references to it. */
	SSL_CTX_free(old);
	return ST_OK;
}

void tls_server_fini(struct tls_server *s)
{
	SSL_CTX_free(s->ctx);
	s->ctx = NULL;
	if (s->bio_method)
		BIO_meth_free(s->bio_method);
	s->bio_method = NULL;
	if (s->lock_ready)
		pthread_mutex_destroy(&s->lock);
	s->lock_ready = false;
}

/* --- connections --------------------------------------------------------------------------- */

void tls_conn_init(struct tls_conn *t, struct tls_server *srv, tls_sink_fn sink, void *sink_ctx)
{
	memset(t, 0, sizeof(*t));
	t->srv = srv;
	t->sink = sink;
	t->sink_ctx = sink_ctx;
}

static int tls_conn_start(struct tls_conn *t)
{
	SSL_CTX *ctx;
	BIO *bio;

	pthread_mutex_lock(&t->srv->lock);
	ctx = t->srv->ctx;
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&t->srv->lock);
	t->ssl = SSL_new(ctx); /* takes its own reference */
	SSL_CTX_free(ctx);
	bio = t->ssl ? BIO_new(t->srv->bio_method) : NULL;
	if (!bio) {
		SSL_free(t->ssl);
		t->ssl = NULL;
		ERR_clear_error();
		return ST_ERR_NOMEM;
	}
	BIO_set_data(bio, t);
	SSL_set_app_data(t->ssl, t);   /* the PSK callback finds its connection */
	SSL_set_bio(t->ssl, bio, bio); /* one BIO both ways: the SSL owns its one reference */
	SSL_set_accept_state(t->ssl);
	return ST_OK;
}

void tls_conn_free(struct tls_conn *t)
{
	if (t->ssl)
		SSL_free(t->ssl);
	t->ssl = NULL;
}

/* Records why the connection failed: the certificate check's verdict, or OpenSSL's reason. */
int tls_fail(struct tls_conn *t, int ssl_err)
{
	long v = t->ssl ? SSL_get_verify_result(t->ssl) : X509_V_OK;
	char why[128];

	if (t->why_kept) {
		/* A check of ours (the OCSP status) refused the handshake and said why. */
		ERR_clear_error();
	} else if (v != X509_V_OK) {
		ERR_clear_error();
		snprintf(t->why, sizeof(t->why), "certificate verify failed: %s",
		         X509_verify_cert_error_string(v));
	} else if (ssl_err == SSL_ERROR_SYSCALL || ssl_err == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		snprintf(t->why, sizeof(t->why), "closed during the handshake");
	} else {
		snprintf(t->why, sizeof(t->why), "%s", tls_reason(why, sizeof(why)));
	}
	return ST_ERR_PROTOCOL;
}

/* Decrypts everything OpenSSL can from what was fed; plaintext to fn in gathered calls. */
static int tls_read_all(struct tls_conn *t, uint8_t *buf, size_t cap, tls_plain_fn fn, void *fn_ctx)
{
	size_t used = 0;

	for (;;) {
		size_t got = 0;
		int e;

		if (cap - used < TLS_RECORD_MAX) {
			if (!fn(fn_ctx, buf, used))
				return ST_OK;
			used = 0;
		}
		if (SSL_read_ex(t->ssl, buf + used, cap - used, &got) == 1) {
			used += got;
			continue;
		}
		e = SSL_get_error(t->ssl, 0);
		/* What came before a failure or close_notify is the peer's and counts. */
		if (used && !fn(fn_ctx, buf, used))
			return ST_OK;
		if (e == SSL_ERROR_WANT_READ)
			return ST_OK;
		if (e == SSL_ERROR_ZERO_RETURN) {
			t->peer_closed = true;
			return ST_OK;
		}
		return tls_fail(t, e);
	}
}

int tls_input(struct tls_conn *t, const uint8_t *p, size_t n, uint8_t *buf, size_t cap,
              tls_plain_fn fn, void *fn_ctx)
{
	int ret = ST_OK;

	if (!t->ssl && !t->srv) {
		/* A client connection whose start failed: nothing to drive. */
		snprintf(t->why, sizeof(t->why), "no TLS session");
		return ST_ERR_PROTOCOL;
	}
	if (!t->ssl && (ret = tls_conn_start(t)) != ST_OK)
		return ret;
	t->in = p;
	t->in_len = n;
	if (!t->established) {
		int r = SSL_do_handshake(t->ssl);

		if (r == 1) {
			t->established = true;
		} else {
			int e = SSL_get_error(t->ssl, r);

			ret = e == SSL_ERROR_WANT_READ ? ST_OK : tls_fail(t, e);
		}
	}
	if (t->established && ret == ST_OK)
		ret = tls_read_all(t, buf, cap, fn, fn_ctx);
	/* The bytes are the caller's again; OpenSSL kept what it needs of a partial record. */
	t->in = NULL;
	t->in_len = 0;
	return ret;
}

static int tls_write(struct tls_conn *t, const void *p, size_t n)
{
	size_t done = 0;

	if (SSL_write_ex(t->ssl, p, n, &done) == 1 && done == n)
		return ST_OK;
	return tls_fail(t, SSL_get_error(t->ssl, 0));
}

int tls_encrypt(struct tls_conn *t, const struct iovec *iov, unsigned iovcnt, uint8_t *stage)
{
	size_t staged = 0;
	int ret;

	if (!t->established) {
		snprintf(t->why, sizeof(t->why), "output before the handshake completed");
		return ST_ERR_PROTOCOL;
	}
	for (unsigned i = 0; i < iovcnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;

		while (len > 0) {
			size_t k;

			/* Whole records straight from a large piece, without staging it. */
			if (staged == 0 && len >= TLS_RECORD_MAX) {
				k = len - len % TLS_RECORD_MAX;
				if ((ret = tls_write(t, p, k)) != ST_OK)
					return ret;
				p += k;
				len -= k;
				continue;
			}
			k = TLS_RECORD_MAX - staged < len ? TLS_RECORD_MAX - staged : len;
			memcpy(stage + staged, p, k);
			staged += k;
			p += k;
			len -= k;
			if (staged == TLS_RECORD_MAX) {
				if ((ret = tls_write(t, stage, staged)) != ST_OK)
					return ret;
				staged = 0;
			}
		}
	}
	return staged ? tls_write(t, stage, staged) : ST_OK;
}

void tls_close_notify(struct tls_conn *t)
{
	if (t->ssl && t->established && SSL_shutdown(t->ssl) < 0)
		ERR_clear_error();
}

int tls_peer_name(const struct tls_conn *t, bool subject, char *out, size_t cap)
{
	X509 *cert = t->ssl ? SSL_get0_peer_certificate(t->ssl) : NULL;
	X509_NAME *name = cert ? X509_get_subject_name(cert) : NULL;
	const unsigned char *s;
	int len;

	if (!name || SSL_get_verify_result(t->ssl) != X509_V_OK || cap == 0)
		return -1;
	if (subject) {
		BIO *mb = BIO_new(BIO_s_mem());
		char *p;
		long n;

		if (!mb)
			return -1;
		X509_NAME_print_ex(mb, name, 0, XN_FLAG_RFC2253);
		n = BIO_get_mem_data(mb, &p);
		len = n >= 0 && (size_t)n < cap ? (int)n : -1;
		if (len >= 0) {
			memcpy(out, p, (size_t)len);
			out[len] = '\0';
		}
		BIO_free(mb);
		return len;
	} else {
		int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
		ASN1_STRING *d =
		        i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)) : NULL;

		if (!d)
			return -1;
		s = ASN1_STRING_get0_data(d);
		len = ASN1_STRING_length(d);
		/* A CN with a NUL inside could pass for a shorter name: refused, as Mosquitto. */
		if (len < 0 || (size_t)len >= cap || memchr(s, 0, (size_t)len))
			return -1;
		memcpy(out, s, (size_t)len);
		out[len] = '\0';
		return len;
	}
}

const char *tls_psk_identity(const struct tls_conn *t)
{
	return t->ssl ? SSL_get_psk_identity(t->ssl) : NULL;
}

const char *tls_version_name(const struct tls_conn *t)
{
	return t->ssl ? SSL_get_version(t->ssl) : "none";
}

const char *tls_cipher_name(const struct tls_conn *t)
{
	const char *c = t->ssl ? SSL_get_cipher_name(t->ssl) : NULL;

	return c ? c : "none";
}

/* --- kernel TLS ---------------------------------------------------------------------------- */

/* A connected loopback TCP pair: the tls ULP attaches only to an established socket. */
static int tls_probe_pair(int fds[3])
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	fds[2] = -1;
	if (fds[0] < 0 || fds[1] < 0 || bind(fds[0], (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(fds[0], 1) != 0 || getsockname(fds[0], (struct sockaddr *)&a, &len) != 0 ||
	    connect(fds[1], (struct sockaddr *)&a, sizeof(a)) != 0)
		return -1;
	fds[2] = accept4(fds[0], NULL, NULL, SOCK_CLOEXEC);
	return fds[2] < 0 ? -1 : 0;
}

bool tls_ktls_available(char *why, size_t cap)
{
	int fds[3], err = 0;
	bool ok = false;

	if (tls_probe_pair(fds) != 0) {
		snprintf(why, cap, "could not probe (loopback socket: %s)", strerror(errno));
	} else if (setsockopt(fds[1], IPPROTO_TCP, TCP_ULP, "tls", 3) == 0) {
		ok = true;
		snprintf(why, cap, "the kernel's tls module is there (TCP_ULP \"tls\" accepted)");
	} else {
		err = errno;
		snprintf(why, cap, "setsockopt(TCP_ULP, \"tls\"): %s%s", strerror(err),
		         err == ENOENT ? " (no tls module in this kernel)" : "");
	}
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return ok;
}
