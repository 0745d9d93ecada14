/*
 * Tests of the TLS engine's client side (src/io/tls_client.c) against its server side, both
 * driven from memory: each end is a struct tls_conn whose sink appends to a byte array, and a
 * pump hands each side's bytes to the other until nothing moves. No socket.
 *
 * Certificates are made here with OpenSSL's API (EC P-256, into a temporary directory): a CA,
 * a server certificate for broker.test and 127.0.0.1 (subjectAltName), a client certificate
 * signed by the same CA, and a second CA that signed nothing of the server's.
 *
 * What is checked: the ClientHello leaves at once; the handshake and data both ways; a client
 * certificate the server requires (and its absence refused); a server certificate from the
 * wrong CA refused, with OpenSSL's verdict in why; a wrong host name or address refused, and
 * accepted with insecure; TLS-PSK (and a wrong key refused); the version floor both ways;
 * ALPN offered and the server's choice seen; OCSP stapling required (good, revoked, unknown,
 * stale, badly signed, missing; TLS 1.2 and 1.3); options that cannot go together refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "io/tls.h"
#include "starling/error.h"
#include "testutil.h"

#include "tls_certs.h"

static const uint8_t psk_key[] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0};

/* The server's keys for PSK: one identity. */
static unsigned server_psk(void *conn, const char *identity, uint8_t *key, unsigned cap)
{
	(void)conn;
	if (strcmp(identity, "bridge-id") != 0 || cap < sizeof(psk_key))
		return 0;
	memcpy(key, psk_key, sizeof(psk_key));
	return sizeof(psk_key);
}

static void server_up(struct tls_server *srv, bool require_cert, uint8_t version)
{
	struct config_tls c;
	char err[256];

	memset(&c, 0, sizeof(c));
	snprintf(c.certfile, sizeof(c.certfile), "%s", path("server.crt"));
	snprintf(c.keyfile, sizeof(c.keyfile), "%s", path("server.key"));
	snprintf(c.cafile, sizeof(c.cafile), "%s", path("ca.crt"));
	c.require_certificate = require_cert;
	c.version = version;
	CU_ASSERT_FATAL(tls_server_init(srv, &c, err, sizeof(err)) == ST_OK);
}

static void opts_ca(struct tls_client_opts *o, const char *ca)
{
	memset(o, 0, sizeof(*o));
	o->cafile = path(ca);
}

/* One end: its engine state, its ciphertext out, its plaintext in, its last result. */
struct end {
	struct tls_conn t;
	struct bytes wire, got;
	uint8_t buf[4 * TLS_RECORD_MAX];
	int last;
};

static struct end *end_new(void)
{
	struct end *e = calloc(1, sizeof(*e));

	if (!e)
		abort();
	return e;
}

static void end_free(struct end *e)
{
	tls_conn_free(&e->t);
	free(e->wire.p);
	free(e->got.p);
	free(e);
	ERR_clear_error();
}

/* Moves from's ciphertext into to; false when nothing moved. */
static bool move(struct end *from, struct end *to)
{
	struct bytes b = from->wire;

	if (b.len == 0 || to->last != ST_OK)
		return false;
	from->wire = (struct bytes){0};
	to->last = tls_input(&to->t, b.p, b.len, to->buf, sizeof(to->buf), on_plain, &to->got);
	free(b.p);
	return true;
}

/* Pumps until nothing moves; true when both ends are established and nothing failed. */
static bool pump(struct end *cl, struct end *sv)
{
	for (int i = 0; i < 20; i++) {
		bool a = move(cl, sv), b = move(sv, cl);

		if (!a && !b)
			break;
	}
	return cl->last == ST_OK && sv->last == ST_OK && cl->t.established && sv->t.established;
}

/* A client of cl and a server of srv, handshaken (or failed): the result of pump. */
static bool connect_pair(struct tls_client *cl, struct tls_server *srv, const char *host,
                         struct end **c, struct end **s)
{
	*c = end_new();
	*s = end_new();
	tls_conn_init(&(*s)->t, srv, sink, &(*s)->wire);
	(*c)->last = tls_conn_init_client(&(*c)->t, cl, host, sink, &(*c)->wire);
	if ((*c)->last != ST_OK)
		return false;
	return pump(*c, *s);
}

static void send_plain(struct end *e, const char *text)
{
	uint8_t stage[TLS_RECORD_MAX];
	struct iovec iov = {(void *)text, strlen(text)};

	CU_ASSERT_EQUAL(tls_encrypt(&e->t, &iov, 1, stage), ST_OK);
}

static void test_client_hello_at_once(void)
{
	struct tls_client cl;
	struct tls_client_opts o;
	struct end *c = end_new();
	char err[256];

	opts_ca(&o, "ca.crt");
	CU_ASSERT_FATAL(tls_client_init(&cl, &o, err, sizeof(err)) == ST_OK);
	CU_ASSERT_EQUAL(tls_conn_init_client(&c->t, &cl, "broker.test", sink, &c->wire), ST_OK);
	CU_ASSERT(c->wire.len > 5);
	CU_ASSERT(c->wire.len > 0 && c->wire.p[0] == 0x16); /* a handshake record */
	CU_ASSERT_FALSE(c->t.established);
	/* Nothing to send before the handshake: refused, not buffered. */
	{
		uint8_t stage[TLS_RECORD_MAX];
		struct iovec iov = {(void *)"x", 1};

		CU_ASSERT_EQUAL(tls_encrypt(&c->t, &iov, 1, stage), ST_ERR_PROTOCOL);
	}
	end_free(c);
	tls_client_fini(&cl);
}

static void test_handshake_and_data(void)
{
	struct tls_server srv;
	struct tls_client cl;
	struct tls_client_opts o;
	struct end *c, *s;
	char err[256];

	server_up(&srv, false, CONFIG_TLS_DEFAULT);
	opts_ca(&o, "ca.crt");
	CU_ASSERT_FATAL(tls_client_init(&cl, &o, err, sizeof(err)) == ST_OK);
	CU_ASSERT_FATAL(connect_pair(&cl, &srv, "broker.test", &c, &s));
	CU_ASSERT_STRING_EQUAL(tls_version_name(&c->t), "TLSv1.3");
	send_plain(c, "ping");
	send_plain(s, "pong");
	pump(c, s);
	CU_ASSERT(s->got.len == 4 && memcmp(s->got.p, "ping", 4) == 0);
	CU_ASSERT(c->got.len == 4 && memcmp(c->got.p, "pong", 4) == 0);
	/* The server's close_notify reaches the client as an end. */
	tls_close_notify(&s->t);
	pump(c, s);
	CU_ASSERT_TRUE(c->t.peer_closed);
	end_free(c);
	end_free(s);
	/* The numeric address in the certificate's subjectAltName. */
	CU_ASSERT(connect_pair(&cl, &srv, "127.0.0.1", &c, &s));
	end_free(c);
	end_free(s);
	tls_client_fini(&cl);
	tls_server_fini(&srv);
}

static void test_client_certificate(void)
{
	struct tls_server srv;
	struct tls_client cl, anon;
	struct tls_client_opts o;
	struct end *c, *s;
	char err[256], name[64];

	server_up(&srv, true, CONFIG_TLS_DEFAULT);
	opts_ca(&o, "ca.crt");
	o.certfile = path("client.crt");
	o.keyfile = path("client.key");
	CU_ASSERT_FATAL(tls_client_init(&cl, &o, err, sizeof(err)) == ST_OK);
	CU_ASSERT(connect_pair(&cl, &srv, "broker.test", &c, &s));
	CU_ASSERT(tls_peer_name(&s->t, false, name, sizeof(name)) > 0);
	CU_ASSERT_STRING_EQUAL(name, "bridge one");
	end_free(c);
	end_free(s);
	/* Without one the server refuses it (TLS 1.3: after the client thinks it is done). */
	opts_ca(&o, "ca.crt");
	CU_ASSERT_FATAL(tls_client_init(&anon, &o, err, sizeof(err)) == ST_OK);
	CU_ASSERT_FALSE(connect_pair(&anon, &srv, "broker.test", &c, &s));
	CU_ASSERT_EQUAL(s->last, ST_ERR_PROTOCOL);
	CU_ASSERT(strstr(s->t.why, "did not return a certificate") != NULL);
	CU_ASSERT_EQUAL(c->last, ST_ERR_PROTOCOL);
	CU_ASSERT(c->t.why[0] != '\0');
	end_free(c);
	end_free(s);
	tls_client_fini(&anon);
	tls_client_fini(&cl);
	tls_server_fini(&srv);
}

/* A server certificate the client's CA did not sign: refused by the client, saying why. */
static void test_wrong_ca(void)
{
	struct tls_server srv;
	struct tls_client cl;
	struct tls_client_opts o;
	struct end *c, *s;
	char err[256];

	server_up(&srv, false, CONFIG_TLS_DEFAULT);
	opts_ca(&o, "other-ca.crt");
	CU_ASSERT_FATAL(tls_client_init(&cl, &o, err, sizeof(err)) == ST_OK);
	CU_ASSERT_FALSE(connect_pair(&cl, &srv, "broker.test", &c, &s));
	CU_ASSERT_EQUAL(c->last, ST_ERR_PROTOCOL);
	CU_ASSERT_FALSE(c->t.established);
	/* The server sends its CA along (OpenSSL builds the chain): a self-signed root the
	 * client does not trust. */
	CU_ASSERT(strcmp(c->t.why, "certificate verify failed: self-signed certificate in "
	                           "certificate chain") == 0);
	/* The client's alert tells the server. */
	CU_ASSERT_EQUAL(s->last, ST_ERR_PROTOCOL);
	end_free(c);
	end_free(s);
	/* insecure skips the host name only, never the chain. */
	tls_client_fini(&cl);
	o.insecure = true;
	CU_ASSERT_FATAL(tls_client_init(&cl, &o, err, sizeof(err)) == ST_OK);
	CU_ASSERT_FALSE(connect_pair(&cl, &srv, "broker.test", &c, &s));
	CU_ASSERT(strstr(c->t.why, "certificate verify failed") != NULL);
	end_free(c);
	end_free(s);
	tls_client_fini(&cl);
	tls_server_fini(&srv);
}

static void test_host_name(void)
{
	static const char *const wrong[] = {"other.test", "broker.test.evil", "127.0.0.2", "::1"};
	struct tls_server srv;
	struct tls_client cl, ins;
	struct tls_client_opts o;
	struct end *c, *s;
	char err[256];

	server_up(&srv, false, CONFIG_TLS_DEFAULT);
	opts_ca(&o, "ca.crt");
	CU_ASSERT_FATAL(tls_client_init(&cl, &o, err, sizeof(err)) == ST_OK);
	o.insecure = true;
	CU_ASSERT_FATAL(tls_client_init(&ins, &o, err, sizeof(err)) == ST_OK);
	for (unsigned i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		CU_ASSERT_FALSE(connect_pair(&cl, &srv, wrong[i], &c, &s));
		CU_ASSERT_EQUAL(c->last, ST_ERR_PROTOCOL);
		CU_ASSERT(strstr(c->t.why, i < 2 ? "hostname mismatch" : "IP address mismatch") !=
		          NULL);
		end_free(c);
		end_free(s);
		CU_ASSERT(connect_pair(&ins, &srv, wrong[i], &c, &s));
		end_free(c);
		end_free(s);
	}
	/* No name at all: nothing to check against, refused unless insecure. */
	c = end_new();
	CU_ASSERT_EQUAL(tls_conn_init_client(&c->t, &cl, "", sink, &c->wire), ST_ERR_PROTOCOL);
	CU_ASSERT(strstr(c->t.why, "no host name") != NULL);
	end_free(c);
	tls_client_fini(&ins);
	tls_client_fini(&cl);
	tls_server_fini(&srv);
}

static void test_psk(void)
{
	static const uint8_t bad_key[] = {1, 2, 3, 4};
	struct config_tls sc;
	struct tls_server srv;
	struct tls_client cl;
	struct tls_client_opts o = {
	        .psk_identity = "bridge-id", .psk_key = psk_key, .psk_key_len = sizeof(psk_key)};
	struct end *c, *s;
	char err[256];

	memset(&sc, 0, sizeof(sc));
	CU_ASSERT_FATAL(tls_server_init_psk(&srv, &sc, "hint", server_psk, err, sizeof(err)) ==
	                ST_OK);
	CU_ASSERT_FATAL(tls_client_init(&cl, &o, err, sizeof(err)) == ST_OK);
	CU_ASSERT(connect_pair(&cl, &srv, "broker.test", &c, &s));
	CU_ASSERT_STRING_EQUAL(tls_psk_identity(&s->t), "bridge-id");
	CU_ASSERT_STRING_EQUAL(tls_version_name(&c->t), "TLSv1.2");
	send_plain(c, "psk ok");
	pump(c, s);
	CU_ASSERT(s->got.len == 6 && memcmp(s->got.p, "psk ok", 6) == 0);
	end_free(c);
	end_free(s);
	tls_client_fini(&cl);
	/* A wrong key fails the handshake (the Finished messages do not match). */
	o.psk_key = bad_key;
	o.psk_key_len = sizeof(bad_key);
	CU_ASSERT_FATAL(tls_client_init(&cl, &o, err, sizeof(err)) == ST_OK);
	CU_ASSERT_FALSE(connect_pair(&cl, &srv, "broker.test", &c, &s));
	CU_ASSERT(s->last == ST_ERR_PROTOCOL || c->last == ST_ERR_PROTOCOL);
	end_free(c);
	end_free(s);
	tls_client_fini(&cl);
	tls_server_fini(&srv);
	/* A certificate server does not let a PSK client in without one. */
	server_up(&srv, false, CONFIG_TLS_DEFAULT);
	o.psk_key = psk_key;
	o.psk_key_len = sizeof(psk_key);
	CU_ASSERT_FATAL(tls_client_init(&cl, &o, err, sizeof(err)) == ST_OK);
	CU_ASSERT_FALSE(connect_pair(&cl, &srv, "broker.test", &c, &s));
	end_free(c);
	end_free(s);
	tls_client_fini(&cl);
	tls_server_fini(&srv);
}

static void test_version_floor(void)
{
	struct tls_server srv12, srv13;
	struct tls_client def, v13;
	struct tls_client_opts o;
	struct end *c, *s;
	char err[256];

	/* A server that speaks TLS 1.2 at most (OpenSSL's context, capped by the test). */
	server_up(&srv12, false, CONFIG_TLS_DEFAULT);
	SSL_CTX_set_max_proto_version(srv12.ctx, TLS1_2_VERSION);
	server_up(&srv13, false, CONFIG_TLS_V13);
	opts_ca(&o, "ca.crt");
	CU_ASSERT_FATAL(tls_client_init(&def, &o, err, sizeof(err)) == ST_OK);
	o.version = CONFIG_TLS_V13;
	CU_ASSERT_FATAL(tls_client_init(&v13, &o, err, sizeof(err)) == ST_OK);
	CU_ASSERT(connect_pair(&def, &srv12, "broker.test", &c, &s));
	CU_ASSERT_STRING_EQUAL(tls_version_name(&c->t), "TLSv1.2");
	end_free(c);
	end_free(s);
	CU_ASSERT(connect_pair(&def, &srv13, "broker.test", &c, &s));
	CU_ASSERT_STRING_EQUAL(tls_version_name(&c->t), "TLSv1.3");
	end_free(c);
	end_free(s);
	/* tlsv1.3 will not go down to 1.2. */
	CU_ASSERT_FALSE(connect_pair(&v13, &srv12, "broker.test", &c, &s));
	CU_ASSERT(c->last == ST_ERR_PROTOCOL || s->last == ST_ERR_PROTOCOL);
	CU_ASSERT(strstr(c->last ? c->t.why : s->t.why, "protocol") != NULL);
	end_free(c);
	end_free(s);
	tls_client_fini(&v13);
	tls_client_fini(&def);
	tls_server_fini(&srv13);
	tls_server_fini(&srv12);
}

/* What the client offered; the server picks "mqtt" if it is there. */
struct alpn_seen {
	uint8_t offer[64];
	unsigned len;
};

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
	struct alpn_seen *seen = arg;

	(void)ssl;
	seen->len = inlen < sizeof(seen->offer) ? inlen : sizeof(seen->offer);
	memcpy(seen->offer, in, seen->len);
	for (unsigned i = 0; i < inlen; i += 1u + in[i])
		if (in[i] == 4 && i + 5 <= inlen && memcmp(in + i + 1, "mqtt", 4) == 0) {
			*out = in + i + 1;
			*outlen = 4;
			return SSL_TLSEXT_ERR_OK;
		}
	return SSL_TLSEXT_ERR_NOACK;
}

static void test_alpn(void)
{
	struct tls_server srv;
	struct tls_client cl;
	struct tls_client_opts o;
	struct alpn_seen seen = {0};
	struct end *c, *s;
	char err[256], got[16];

	server_up(&srv, false, CONFIG_TLS_DEFAULT);
	SSL_CTX_set_alpn_select_cb(srv.ctx, alpn_select, &seen);
	opts_ca(&o, "ca.crt");
	o.alpn = "x-other,mqtt";
	CU_ASSERT_FATAL(tls_client_init(&cl, &o, err, sizeof(err)) == ST_OK);
	CU_ASSERT(connect_pair(&cl, &srv, "broker.test", &c, &s));
	CU_ASSERT_EQUAL(seen.len, 13);
	CU_ASSERT(memcmp(seen.offer, "\x07x-other\x04mqtt", 13) == 0);
	CU_ASSERT_STRING_EQUAL(tls_alpn_selected(&c->t, got, sizeof(got)), "mqtt");
	end_free(c);
	end_free(s);
	tls_client_fini(&cl);
	/* None offered: none chosen. */
	seen.len = 0;
	opts_ca(&o, "ca.crt");
	CU_ASSERT_FATAL(tls_client_init(&cl, &o, err, sizeof(err)) == ST_OK);
	CU_ASSERT(connect_pair(&cl, &srv, "broker.test", &c, &s));
	CU_ASSERT_EQUAL(seen.len, 0);
	CU_ASSERT_STRING_EQUAL(tls_alpn_selected(&c->t, got, sizeof(got)), "");
	end_free(c);
	end_free(s);
	tls_client_fini(&cl);
	tls_server_fini(&srv);
}

/* --- OCSP stapling ---------------------------------------------------------------------- */

/* The response the test's server staples (DER), or none. */
struct staple {
	unsigned char *der;
	int len;
};

static int staple_cb(SSL *ssl, void *arg)
{
	struct staple *st = arg;
	unsigned char *copy;

	if (!st->der)
		return SSL_TLSEXT_ERR_NOACK;
	copy = OPENSSL_malloc((size_t)st->len);
	memcpy(copy, st->der, (size_t)st->len);
	SSL_set_tlsext_status_ocsp_resp(ssl, copy, st->len); /* takes copy */
	return SSL_TLSEXT_ERR_OK;
}

static X509 *read_cert(const char *name)
{
	FILE *f = fopen(path(name), "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	if (!x)
		abort();
	return x;
}

/* A response about the server's certificate: status, valid from..to (seconds from now),
 * signed by signer. */
static void staple_make(struct staple *st, int status, long from_s, long to_s, X509 *signer,
                        EVP_PKEY *signer_key)
{
	X509 *leaf = read_cert("server.crt");
	OCSP_CERTID *id = OCSP_cert_to_id(NULL, leaf, ca_cert);
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	ASN1_TIME *this_upd = X509_gmtime_adj(NULL, from_s),
	          *next_upd = X509_gmtime_adj(NULL, to_s);
	ASN1_TIME *rev = X509_gmtime_adj(NULL, -7200);
	OCSP_RESPONSE *resp;

	OCSP_basic_add1_status(
	        bs, id, status,
	        status == V_OCSP_CERTSTATUS_REVOKED ? OCSP_REVOKED_STATUS_KEYCOMPROMISE : 0,
	        status == V_OCSP_CERTSTATUS_REVOKED ? rev : NULL, this_upd, next_upd);
	CU_ASSERT_FATAL(OCSP_basic_sign(bs, signer, signer_key, EVP_sha256(), NULL, 0) == 1);
	resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	OPENSSL_free(st->der);
	st->der = NULL;
	st->len = i2d_OCSP_RESPONSE(resp, &st->der);
	CU_ASSERT_FATAL(st->len > 0);
	OCSP_RESPONSE_free(resp);
	OCSP_BASICRESP_free(bs);
	OCSP_CERTID_free(id);
	ASN1_TIME_free(this_upd);
	ASN1_TIME_free(next_upd);
	ASN1_TIME_free(rev);
	X509_free(leaf);
}

static void test_ocsp(void)
{
	static const uint8_t versions[] = {CONFIG_TLS_DEFAULT, CONFIG_TLS_V13};
	struct tls_server srv12, srv13;
	struct tls_client cl, plain;
	struct tls_client_opts o;
	struct staple st = {0};
	struct end *c, *s;
	char err[256];

	/* Both versions: TLS 1.2 staples in CertificateStatus, TLS 1.3 in the Certificate. */
	server_up(&srv12, false, CONFIG_TLS_DEFAULT);
	SSL_CTX_set_max_proto_version(srv12.ctx, TLS1_2_VERSION);
	server_up(&srv13, false, CONFIG_TLS_DEFAULT);
	SSL_CTX_set_tlsext_status_cb(srv12.ctx, staple_cb);
	SSL_CTX_set_tlsext_status_arg(srv12.ctx, &st);
	SSL_CTX_set_tlsext_status_cb(srv13.ctx, staple_cb);
	SSL_CTX_set_tlsext_status_arg(srv13.ctx, &st);
	opts_ca(&o, "ca.crt");
	CU_ASSERT_FATAL(tls_client_init(&plain, &o, err, sizeof(err)) == ST_OK);
	o.require_ocsp = true;
	CU_ASSERT_FATAL(tls_client_init(&cl, &o, err, sizeof(err)) == ST_OK);
	for (unsigned v = 0; v < sizeof(versions); v++) {
		struct tls_server *srv = v ? &srv13 : &srv12;
		static const struct {
			int status;
			long from, to;
			bool other_signer;
			const char *why; /* NULL: accepted */
		} cases[] = {
		        {V_OCSP_CERTSTATUS_GOOD, -60, 3600, false, NULL},
		        {V_OCSP_CERTSTATUS_REVOKED, -60, 3600, false, "revoked"},
		        {V_OCSP_CERTSTATUS_UNKNOWN, -60, 3600, false, "status unknown"},
		        {V_OCSP_CERTSTATUS_GOOD, -7200, -3600, false, "validity period"},
		        {V_OCSP_CERTSTATUS_GOOD, -60, 3600, true, "does not verify"},
		};

		/* Nothing stapled: refused by a client that requires it, not by one that does
		 * not. */
		OPENSSL_free(st.der);
		st.der = NULL;
		CU_ASSERT_FALSE(connect_pair(&cl, srv, "broker.test", &c, &s));
		CU_ASSERT(strstr(c->t.why, "stapled no OCSP response") != NULL);
		end_free(c);
		end_free(s);
		CU_ASSERT(connect_pair(&plain, srv, "broker.test", &c, &s));
		end_free(c);
		end_free(s);
		for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			bool ok;

			staple_make(&st, cases[i].status, cases[i].from, cases[i].to,
			            cases[i].other_signer ? other_cert : ca_cert,
			            cases[i].other_signer ? other_key : ca_key);
			ok = connect_pair(&cl, srv, "broker.test", &c, &s);
			CU_ASSERT_EQUAL(ok, cases[i].why == NULL);
			if (cases[i].why && !strstr(c->t.why, cases[i].why)) {
				fprintf(stderr, "case %u, TLS %s: why \"%s\"\n", i,
				        v ? "1.3" : "1.2", c->t.why);
				CU_FAIL("OCSP refusal without its reason");
			}
			if (ok)
				CU_ASSERT_STRING_EQUAL(tls_version_name(&c->t),
				                       v ? "TLSv1.3" : "TLSv1.2");
			end_free(c);
			end_free(s);
		}
	}
	OPENSSL_free(st.der);
	tls_client_fini(&cl);
	tls_client_fini(&plain);
	tls_server_fini(&srv12);
	tls_server_fini(&srv13);
	/* PSK has no certificate to ask about. */
	memset(&o, 0, sizeof(o));
	o.psk_identity = "id";
	o.psk_key = psk_key;
	o.psk_key_len = sizeof(psk_key);
	o.require_ocsp = true;
	CU_ASSERT_EQUAL(tls_client_init(&cl, &o, err, sizeof(err)), ST_ERR_CONFIG);
}

static void test_bad_options(void)
{
	struct tls_client cl;
	struct tls_client_opts o;
	char err[256];

	opts_ca(&o, "ca.crt");
	o.certfile = path("client.crt");
	CU_ASSERT_EQUAL(tls_client_init(&cl, &o, err, sizeof(err)), ST_ERR_CONFIG);
	CU_ASSERT(strstr(err, "certfile without keyfile") != NULL);
	opts_ca(&o, "missing.crt");
	CU_ASSERT_EQUAL(tls_client_init(&cl, &o, err, sizeof(err)), ST_ERR_CONFIG);
	CU_ASSERT(strstr(err, "missing.crt") != NULL);
	opts_ca(&o, "ca.crt");
	o.certfile = path("client.crt");
	o.keyfile = path("server.key");
	CU_ASSERT_EQUAL(tls_client_init(&cl, &o, err, sizeof(err)), ST_ERR_CONFIG);
	CU_ASSERT(strstr(err, "server.key: key values mismatch") != NULL);
	opts_ca(&o, "ca.crt");
	o.alpn = "mqtt,";
	CU_ASSERT_EQUAL(tls_client_init(&cl, &o, err, sizeof(err)), ST_ERR_CONFIG);
	opts_ca(&o, "ca.crt");
	o.psk_identity = "id";
	o.psk_key = psk_key;
	o.psk_key_len = sizeof(psk_key);
	CU_ASSERT_EQUAL(tls_client_init(&cl, &o, err, sizeof(err)), ST_ERR_CONFIG);
	CU_ASSERT(strstr(err, "PSK or certificates") != NULL);
	o.cafile = NULL;
	o.version = CONFIG_TLS_V13;
	CU_ASSERT_EQUAL(tls_client_init(&cl, &o, err, sizeof(err)), ST_ERR_CONFIG);
	CU_ASSERT(strstr(err, "TLS 1.2 only") != NULL);
	o.version = CONFIG_TLS_DEFAULT;
	o.psk_key_len = 0;
	CU_ASSERT_EQUAL(tls_client_init(&cl, &o, err, sizeof(err)), ST_ERR_CONFIG);
	/* No CA given: the system's, which do not know this test's CA. */
	{
		struct tls_server srv;
		struct end *c, *s;

		memset(&o, 0, sizeof(o));
		CU_ASSERT_FATAL(tls_client_init(&cl, &o, err, sizeof(err)) == ST_OK);
		server_up(&srv, false, CONFIG_TLS_DEFAULT);
		CU_ASSERT_FALSE(connect_pair(&cl, &srv, "broker.test", &c, &s));
		CU_ASSERT(strstr(c->t.why, "certificate verify failed") != NULL);
		end_free(c);
		end_free(s);
		tls_server_fini(&srv);
		tls_client_fini(&cl);
	}
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"the ClientHello leaves at once", test_client_hello_at_once},
	        {"handshake and data both ways", test_handshake_and_data},
	        {"client certificate", test_client_certificate},
	        {"server certificate of another CA refused", test_wrong_ca},
	        {"host name checked, unless insecure", test_host_name},
	        {"TLS-PSK", test_psk},
	        {"version floor", test_version_floor},
	        {"ALPN", test_alpn},
	        {"OCSP stapling required", test_ocsp},
	        {"options refused", test_bad_options},
	        {NULL, NULL},
	};

	if (tls_certs_init() != 0)
		return 1;
	tu_add_suite("tls client", tests);
	{
		int ret = tu_run_registry();

		return tls_certs_fini() != 0 ? 1 : ret;
	}
}
