/*
 * The client side of the TLS engine (tls.h), for the connections the broker makes to other
 * brokers: a context per remote endpoint (CAs or the system's, a client certificate, the
 * lowest version, ALPN, or TLS-PSK), and connections that set SNI and the name the server's
 * certificate must carry, then send their ClientHello at once. The record loop is tls.c's.
 *
 * Expected workload: a handful of contexts (one per bridge), a handshake per connection
 * attempt, then the same traffic as any connection.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "starling/error.h"
#include "tls_impl.h"

#define TLS_ALPN_WIRE_MAX 512 /* bytes of the encoded ALPN list */

static bool tls_set(const char *s)
{
	return s && s[0];
}

/* "a,b" -> "\x01a\x01b" (RFC 7301's protocol list); -1 for an empty or too long name. */
static int tls_alpn_wire(const char *list, uint8_t *out, size_t cap, unsigned *len)
{
	size_t n = 0;

	for (const char *p = list;;) {
		const char *comma = strchr(p, ',');
		size_t k = comma ? (size_t)(comma - p) : strlen(p);

		if (k == 0 || k > 255 || n + 1 + k > cap)
			return -1;
		out[n++] = (uint8_t)k;
		memcpy(out + n, p, k);
		n += k;
		if (!comma)
			break;
		p = comma + 1;
	}
	*len = (unsigned)n;
	return 0;
}

/* The identity and key of a PSK handshake: the connection's client context's. */
static unsigned int tls_psk_client_cb(SSL *ssl, const char *hint, char *identity,
                                      unsigned int max_identity_len, unsigned char *psk,
                                      unsigned int max_psk_len)
{
	const struct tls_conn *t = SSL_get_app_data(ssl);
	const struct tls_client *cl = t ? t->cli : NULL;
	size_t id_len;

	(void)hint;
	if (!cl || !cl->psk)
		return 0;
	id_len = strlen(cl->psk_identity);
	if (id_len + 1 > max_identity_len || cl->psk_key_len > max_psk_len)
		return 0;
	memcpy(identity, cl->psk_identity, id_len + 1);
	memcpy(psk, cl->psk_key, cl->psk_key_len);
	return cl->psk_key_len;
}

/* --- OCSP stapling ------------------------------------------------------------------------ */

#define TLS_OCSP_SKEW_S 300 /* clock skew allowed on a response's times */

/* The issuer of x among the verified chain, or the chain the server sent. */
static X509 *tls_ocsp_issuer(SSL *ssl, X509 *x)
{
	STACK_OF(X509) * chains[2] = {SSL_get0_verified_chain(ssl), SSL_get_peer_cert_chain(ssl)};

	for (unsigned k = 0; k < 2; k++)
		for (int i = 0; chains[k] && i < sk_X509_num(chains[k]); i++) {
			X509 *c = sk_X509_value(chains[k], i);

			if (c != x && X509_check_issued(c, x) == X509_V_OK)
				return c;
		}
	return NULL;
}

/* Checks a decoded response for the server's certificate; NULL when good, else why not. */
static const char *tls_ocsp_check(SSL *ssl, OCSP_RESPONSE *resp)
{
	X509 *leaf = SSL_get0_peer_certificate(ssl), *issuer;
	X509_STORE *store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
	ASN1_GENERALIZEDTIME *this_upd = NULL, *next_upd = NULL;
	OCSP_BASICRESP *bs = NULL;
	OCSP_CERTID *id = NULL;
	const char *why = NULL;
	int status = -1, reason = 0;

	if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL)
		return "the stapled OCSP response is an error status";
	if (!leaf || !(issuer = tls_ocsp_issuer(ssl, leaf)))
		return "no issuer to check the OCSP response against";
	if (!(bs = OCSP_response_get1_basic(resp)))
		return "the stapled OCSP response cannot be read";
	/* Signed by the issuer, or by a responder the issuer delegated to, chained to our CAs. */
	if (OCSP_basic_verify(bs, SSL_get_peer_cert_chain(ssl), store, 0) <= 0)
		why = "the stapled OCSP response's signature does not verify";
	else if (!(id = OCSP_cert_to_id(NULL, leaf, issuer)))
		why = "out of memory";
	else if (OCSP_resp_find_status(bs, id, &status, &reason, NULL, &this_upd, &next_upd) != 1)
		why = "the stapled OCSP response is not about the server's certificate";
	else if (OCSP_check_validity(this_upd, next_upd, TLS_OCSP_SKEW_S, -1) != 1)
		why = "the stapled OCSP response is outside its validity period";
	else if (status == V_OCSP_CERTSTATUS_REVOKED)
		why = "the server's certificate is revoked (OCSP)";
	else if (status != V_OCSP_CERTSTATUS_GOOD)
		why = "the server's certificate has OCSP status unknown";
	OCSP_CERTID_free(id);
	OCSP_BASICRESP_free(bs);
	return why;
}

/*
 * OpenSSL calls this once the server's certificate and its stapled status are in (and the
 * chain verified): 1 accepts, 0 fails the handshake with the reason kept in t->why.
 */
static int tls_ocsp_cb(SSL *ssl, void *arg)
{
	struct tls_conn *t = SSL_get_app_data(ssl);
	const unsigned char *p = NULL;
	long len = SSL_get_tlsext_status_ocsp_resp(ssl, &p);
	OCSP_RESPONSE *resp = p && len > 0 ? d2i_OCSP_RESPONSE(NULL, &p, len) : NULL;
	const char *why;

	(void)arg;
	if (!p || len <= 0)
		why = "the server stapled no OCSP response (bridge_require_ocsp)";
	else if (!resp)
		why = "the stapled OCSP response cannot be decoded";
	else
		why = tls_ocsp_check(ssl, resp);
	OCSP_RESPONSE_free(resp);
	/* The OCSP checks leave their reasons on the thread's queue, which SSL_get_error would
	 * read as the handshake's own failure. */
	ERR_clear_error();
	if (!why)
		return 1;
	if (t) {
		snprintf(t->why, sizeof(t->why), "%s", why);
		t->why_kept = true;
	}
	return 0;
}

/* The options that cannot go together, and the PSK's bounds; ST_OK or ST_ERR_CONFIG. */
static int tls_client_check(const struct tls_client_opts *o, char *err, size_t errlen)
{
	if (tls_set(o->certfile) != tls_set(o->keyfile)) {
		snprintf(err, errlen, "%s without %s",
		         tls_set(o->certfile) ? "certfile" : "keyfile",
		         tls_set(o->certfile) ? "keyfile" : "certfile");
		return ST_ERR_CONFIG;
	}
	if (!tls_set(o->psk_identity))
		return ST_OK;
	if (tls_set(o->cafile) || tls_set(o->capath) || tls_set(o->certfile)) {
		snprintf(err, errlen, "a PSK identity with certificates: TLS-PSK or certificates");
		return ST_ERR_CONFIG;
	}
	if (o->version == CONFIG_TLS_V13) {
		snprintf(err, errlen, "tls_version tlsv1.3 with a PSK: TLS-PSK is TLS 1.2 only");
		return ST_ERR_CONFIG;
	}
	if (o->require_ocsp) {
		snprintf(err, errlen, "require_ocsp with a PSK: there is no certificate to check");
		return ST_ERR_CONFIG;
	}
	if (strlen(o->psk_identity) > TLS_PSK_IDENTITY_MAX) {
		snprintf(err, errlen, "PSK identity longer than %d bytes", TLS_PSK_IDENTITY_MAX);
		return ST_ERR_CONFIG;
	}
	if (!o->psk_key || o->psk_key_len == 0 || o->psk_key_len > TLS_PSK_KEY_MAX) {
		snprintf(err, errlen, "PSK key of %u bytes (1 to %d)", o->psk_key_len,
		         TLS_PSK_KEY_MAX);
		return ST_ERR_CONFIG;
	}
	return ST_OK;
}

/* PSK cipher suites of TLS 1.2 only, no certificate to verify (tls.h says why). */
static int tls_client_psk(SSL_CTX *ctx, struct tls_client *cl, const struct tls_client_opts *o,
                          char *err, size_t errlen)
{
	char why[128];

	SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_set_cipher_list(ctx, "PSK") != 1) {
		snprintf(err, errlen, "PSK cipher suites: %s", tls_reason(why, sizeof(why)));
		return ST_ERR_CONFIG;
	}
	SSL_CTX_set_psk_client_callback(ctx, tls_psk_client_cb);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	cl->psk = true;
	snprintf(cl->psk_identity, sizeof(cl->psk_identity), "%s", o->psk_identity);
	memcpy(cl->psk_key, o->psk_key, o->psk_key_len);
	cl->psk_key_len = o->psk_key_len;
	return ST_OK;
}

/* The server's certificate is always verified: against cafile/capath, or the system's CAs. */
static int tls_client_certs(SSL_CTX *ctx, const struct tls_client_opts *o, char *err, size_t errlen)
{
	const char *cafile = tls_set(o->cafile) ? o->cafile : NULL;
	const char *capath = tls_set(o->capath) ? o->capath : NULL;
	char why[128];

	if (cafile || capath) {
		if (SSL_CTX_load_verify_locations(ctx, cafile, capath) != 1)
			return tls_file_error(cafile ? "cafile" : "capath",
			                      cafile ? cafile : capath, err, errlen);
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(err, errlen, "the system's CA certificates: %s",
		         tls_reason(why, sizeof(why)));
		return ST_ERR_CONFIG;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (o->require_ocsp) {
		SSL_CTX_set_tlsext_status_type(ctx, TLSEXT_STATUSTYPE_ocsp);
		SSL_CTX_set_tlsext_status_cb(ctx, tls_ocsp_cb);
	}
	if (tls_set(o->certfile))
		return tls_ctx_cert(ctx, o->certfile, o->keyfile, err, errlen);
	return ST_OK;
}

int tls_client_init(struct tls_client *cl, const struct tls_client_opts *o, char *err,
                    size_t errlen)
{
	uint8_t alpn[TLS_ALPN_WIRE_MAX];
	unsigned alpn_len = 0;
	SSL_CTX *ctx = NULL;
	char why[128];
	int ret;

	memset(cl, 0, sizeof(*cl));
	cl->insecure = o->insecure;
	cl->require_ocsp = o->require_ocsp;
	if ((ret = tls_client_check(o, err, errlen)) != ST_OK)
		return ret;
	if (tls_set(o->alpn) && tls_alpn_wire(o->alpn, alpn, sizeof(alpn), &alpn_len) != 0) {
		snprintf(err, errlen, "alpn %s: an empty protocol name, or one too long", o->alpn);
		return ST_ERR_CONFIG;
	}
	cl->bio_method = tls_bio_method_new();
	if (!cl->bio_method || !(ctx = SSL_CTX_new(TLS_client_method()))) {
		snprintf(err, errlen, "SSL_CTX_new: %s", tls_reason(why, sizeof(why)));
		ret = ST_ERR_NOMEM;
		goto fail;
	}
	SSL_CTX_set_min_proto_version(ctx, o->version == CONFIG_TLS_V13 ? TLS1_3_VERSION
	                                                                : TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	ret = tls_set(o->psk_identity) ? tls_client_psk(ctx, cl, o, err, errlen)
	                               : tls_client_certs(ctx, o, err, errlen);
	if (ret != ST_OK)
		goto fail;
	/* SSL_CTX_set_alpn_protos returns 0 on success (unlike the rest of the API). */
	if (alpn_len && SSL_CTX_set_alpn_protos(ctx, alpn, alpn_len) != 0) {
		snprintf(err, errlen, "alpn %s: %s", o->alpn, tls_reason(why, sizeof(why)));
		ret = ST_ERR_NOMEM;
		goto fail;
	}
	tls_ctx_warm(ctx);
	cl->ctx = ctx;
	return ST_OK;
fail:
	SSL_CTX_free(ctx);
	tls_client_fini(cl);
	return ret;
}

void tls_client_fini(struct tls_client *cl)
{
	SSL_CTX_free(cl->ctx);
	cl->ctx = NULL;
	if (cl->bio_method)
		BIO_meth_free(cl->bio_method);
	cl->bio_method = NULL;
	OPENSSL_cleanse(cl->psk_key, sizeof(cl->psk_key));
}

/* SNI for a name (RFC 6066 has none for an address); the name or address to verify. */
static int tls_client_host(struct tls_conn *t, const char *host)
{
	uint8_t ip[16];
	bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
	char why[128];

	if (!is_ip && host[0] && SSL_set_tlsext_host_name(t->ssl, host) != 1) {
		snprintf(t->why, sizeof(t->why), "server name %.64s: %s", host,
		         tls_reason(why, sizeof(why)));
		return ST_ERR_PROTOCOL;
	}
	if (t->cli->insecure || t->cli->psk)
		return ST_OK;
	if (!host[0]) {
		snprintf(t->why, sizeof(t->why), "no host name to verify the certificate against");
		return ST_ERR_PROTOCOL;
	}
	if (is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) == 1)
			return ST_OK;
	} else {
		SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(t->ssl, host) == 1)
			return ST_OK;
	}
	snprintf(t->why, sizeof(t->why), "host %.64s: %s", host, tls_reason(why, sizeof(why)));
	return ST_ERR_PROTOCOL;
}

int tls_conn_init_client(struct tls_conn *t, struct tls_client *cl, const char *host,
                         tls_sink_fn sink, void *sink_ctx)
{
	BIO *bio;
	int r, ret;

	memset(t, 0, sizeof(*t));
	t->cli = cl;
	t->sink = sink;
	t->sink_ctx = sink_ctx;
	t->ssl = SSL_new(cl->ctx);
	bio = t->ssl ? BIO_new(cl->bio_method) : NULL;
	if (!bio) {
		SSL_free(t->ssl);
		t->ssl = NULL;
		ERR_clear_error();
		snprintf(t->why, sizeof(t->why), "out of memory");
		return ST_ERR_NOMEM;
	}
	BIO_set_data(bio, t);
	SSL_set_app_data(t->ssl, t);   /* the PSK callback finds its context */
	SSL_set_bio(t->ssl, bio, bio); /* one BIO both ways: the SSL owns its one reference */
	SSL_set_connect_state(t->ssl);
	if ((ret = tls_client_host(t, host)) != ST_OK)
		return ret;
	/* The ClientHello goes into the sink now; the server's answer comes through tls_input. */
	r = SSL_do_handshake(t->ssl);
	if (r != 1 && SSL_get_error(t->ssl, r) != SSL_ERROR_WANT_READ)
		return tls_fail(t, SSL_get_error(t->ssl, r));
	return ST_OK;
}

const char *tls_alpn_selected(const struct tls_conn *t, char *out, size_t cap)
{
	const unsigned char *p = NULL;
	unsigned int n = 0;

	if (t->ssl)
		SSL_get0_alpn_selected(t->ssl, &p, &n);
	if (cap == 0)
		return out;
	if (n >= cap)
		n = (unsigned)cap - 1;
	if (n)
		memcpy(out, p, n);
	out[n] = '\0';
	return out;
}
