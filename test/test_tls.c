/*
 * Tests of the TLS engine (src/io/tls.c) with two in-memory endpoints and no socket: the
 * server is a struct tls_conn whose sink appends to a byte array; the client is a plain
 * OpenSSL client SSL over a pair of memory BIOs. A pump moves the bytes between them until
 * neither has anything to say.
 *
 * Certificates are made here with OpenSSL's API (EC P-256, into a temporary directory): a CA,
 * server certificates signed by it (two, for the reload), and a client certificate with a
 * multi-part subject for use_identity/subject_as_username.
 *
 * What is checked: the handshake in both protocol versions and tls_version's minimum; data
 * both ways, fed whole or a byte at a time; a batch of small pieces encrypted into as few
 * 16 KiB records as its size needs, and a large piece without staging; garbage and plaintext
 * refused with a reason; close_notify; the plaintext callback stopping the loop; client
 * certificates and the names they give; a reload swapping the context for new connections
 * only, and a broken file keeping the old one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "io/tls.h"
#include "starling/error.h"
#include "testutil.h"

static char dir[] = "/tmp/starling-tls-test-XXXXXX";
static EVP_PKEY *ca_key;
static X509 *ca_cert;

/* A growing byte array: the server's sink, and what the client wrote. */
struct bytes {
	uint8_t *p;
	size_t len, cap;
	unsigned writes; /* sink calls */
};

static void bytes_add(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static int sink(void *ctx, const uint8_t *p, size_t n)
{
	struct bytes *b = ctx;

	b->writes++;
	bytes_add(b, p, n);
	return 0;
}

/* Plaintext the server received; stop_after: the callback returns false past this many. */
struct plain {
	struct bytes b;
	unsigned calls;
	unsigned stop_after;
};

static bool on_plain(void *ctx, const uint8_t *p, size_t n)
{
	struct plain *pl = ctx;

	pl->calls++;
	bytes_add(&pl->b, p, n);
	return pl->stop_after == 0 || pl->calls < pl->stop_after;
}

static char *path(const char *name)
{
	static char buf[8][256];
	static unsigned i;
	char *p = buf[i++ % 8];

	snprintf(p, 256, "%s/%s", dir, name);
	return p;
}

static EVP_PKEY *key_new(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (!k)
		abort();
	return k;
}

/* A certificate for subject (X509_NAME one-line parts) signed by the CA (or self-signed). */
static X509 *cert_new(EVP_PKEY *key, const char *const *subject, bool ca, long days_from,
                      long days_to)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	static long serial = 1;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), days_from * 86400);
	X509_gmtime_adj(X509_getm_notAfter(x), days_to * 86400);
	for (unsigned i = 0; subject[i]; i += 2)
		X509_NAME_add_entry_by_txt(n, subject[i], MBSTRING_ASC,
		                           (const unsigned char *)subject[i + 1], -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, ca ? n : X509_get_subject_name(ca_cert));
	X509_set_pubkey(x, key);
	if (ca) {
		X509V3_CTX v3;
		X509_EXTENSION *e;

		X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
		e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	X509_sign(x, ca ? key : ca_key, EVP_sha256());
	X509_NAME_free(n);
	return x;
}

static void write_pem(const char *file, X509 *x, EVP_PKEY *k)
{
	FILE *f = fopen(path(file), "w");

	if (!f)
		abort();
	if (x)
		PEM_write_X509(f, x);
	if (k)
		PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
}

/* A server certificate with CN cn, signed by the CA, as name.crt / name.key. */
static void make_server(const char *name, const char *cn)
{
	const char *subj[] = {"CN", cn, NULL};
	EVP_PKEY *k = key_new();
	X509 *x = cert_new(k, subj, false, 0, 30);
	char crt[64], key[64];

	snprintf(crt, sizeof(crt), "%s.crt", name);
	snprintf(key, sizeof(key), "%s.key", name);
	write_pem(crt, x, NULL);
	write_pem(key, NULL, k);
	X509_free(x);
	EVP_PKEY_free(k);
}

static int suite_init(void)
{
	const char *ca_subj[] = {"CN", "Test CA", NULL};

	if (!mkdtemp(dir))
		return -1;
	ca_key = key_new();
	ca_cert = cert_new(ca_key, ca_subj, true, 0, 30);
	write_pem("ca.crt", ca_cert, NULL);
	make_server("server", "server one");
	make_server("server2", "server two");
	return 0;
}

static int suite_fini(void)
{
	char cmd[128];

	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void config_server(struct config_tls *c, const char *name)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->certfile, sizeof(c->certfile), "%s/%s.crt", dir, name);
	snprintf(c->keyfile, sizeof(c->keyfile), "%s/%s.key", dir, name);
	snprintf(c->cafile, sizeof(c->cafile), "%s/ca.crt", dir);
}

/* The client side: an SSL over two memory BIOs. */
struct client {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *in, *out; /* in: what the server sent; out: what the client wrote */
};

static void client_init(struct client *cl, int max_version, const char *cert, const char *key)
{
	cl->ctx = SSL_CTX_new(TLS_client_method());
	CU_ASSERT_FATAL(cl->ctx != NULL);
	CU_ASSERT_FATAL(SSL_CTX_load_verify_locations(cl->ctx, path("ca.crt"), NULL) == 1);
	SSL_CTX_set_verify(cl->ctx, SSL_VERIFY_PEER, NULL);
	if (max_version)
		SSL_CTX_set_max_proto_version(cl->ctx, max_version);
	if (cert) {
		CU_ASSERT_FATAL(
		        SSL_CTX_use_certificate_file(cl->ctx, path(cert), SSL_FILETYPE_PEM) == 1);
		CU_ASSERT_FATAL(SSL_CTX_use_PrivateKey_file(cl->ctx, path(key), SSL_FILETYPE_PEM) ==
		                1);
	}
	cl->ssl = SSL_new(cl->ctx);
	cl->in = BIO_new(BIO_s_mem());
	cl->out = BIO_new(BIO_s_mem());
	SSL_set_bio(cl->ssl, cl->in, cl->out);
	SSL_set_connect_state(cl->ssl);
}

static void client_fini(struct client *cl)
{
	SSL_free(cl->ssl);
	SSL_CTX_free(cl->ctx);
	ERR_clear_error();
}

/* One server side: engine state, its ciphertext output and the plaintext it received. */
struct server {
	struct tls_conn t;
	struct bytes wire;
	struct plain got;
	uint8_t buf[4 * TLS_RECORD_MAX];
	int last; /* last tls_input result */
};

static void server_init(struct server *s, struct tls_server *srv)
{
	memset(s, 0, sizeof(*s));
	tls_conn_init(&s->t, srv, sink, &s->wire);
}

static void server_fini(struct server *s)
{
	tls_conn_free(&s->t);
	free(s->wire.p);
	free(s->got.b.p);
}

/* Feeds the server what the client wrote, in pieces of at most `step` bytes (0: whole). */
static int feed_server(struct server *s, struct client *cl, size_t step)
{
	char *p;
	long n = BIO_get_mem_data(cl->out, &p);
	uint8_t *copy;
	int ret = ST_OK;

	if (n <= 0)
		return ST_OK;
	copy = malloc((size_t)n);
	memcpy(copy, p, (size_t)n);
	(void)BIO_reset(cl->out);
	for (long off = 0; off < n && ret == ST_OK;) {
		size_t k = step && (size_t)(n - off) > step ? step : (size_t)(n - off);

		ret = tls_input(&s->t, copy + off, k, s->buf, sizeof(s->buf), on_plain, &s->got);
		off += (long)k;
	}
	free(copy);
	s->last = ret;
	return ret;
}

/* Gives the client what the server's sink holds. */
static void feed_client(struct server *s, struct client *cl)
{
	if (s->wire.len)
		BIO_write(cl->in, s->wire.p, (int)s->wire.len);
	s->wire.len = 0;
}

/* Runs the handshake to its end (or a failure): true if both sides finished. */
static bool handshake(struct server *s, struct client *cl, size_t step)
{
	for (int i = 0; i < 10; i++) {
		int r = SSL_do_handshake(cl->ssl);
		/* Asked now: writing into its BIO below clears what SSL_get_error looks at. */
		int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(cl->ssl, r);

		if (feed_server(s, cl, step) != ST_OK)
			return false;
		feed_client(s, cl);
		if (r == 1 && s->t.established)
			return true;
		if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ)
			return false;
	}
	return false;
}

/* Reads everything the client can decrypt into out. */
static void client_read(struct client *cl, struct bytes *out)
{
	uint8_t buf[16384];
	size_t got;

	while (SSL_read_ex(cl->ssl, buf, sizeof(buf), &got) == 1)
		bytes_add(out, buf, got);
}

static void test_handshake_and_data(void)
{
	struct config_tls c;
	struct tls_server srv;
	char err[256];
	static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};

	config_server(&c, "server");
	CU_ASSERT_FATAL(tls_server_init(&srv, &c, err, sizeof(err)) == ST_OK);
	for (unsigned v = 0; v < 2; v++) {
		for (size_t step = 0; step <= 1; step++) {
			struct server *s = malloc(sizeof(*s));
			struct client cl;
			struct bytes back = {0};
			struct iovec iov = {(void *)"pong", 4};

			server_init(s, &srv);
			client_init(&cl, versions[v], NULL, NULL);
			CU_ASSERT_FATAL(handshake(s, &cl, step));
			CU_ASSERT_STRING_EQUAL(tls_version_name(&s->t), v ? "TLSv1.3" : "TLSv1.2");
			CU_ASSERT(SSL_write(cl.ssl, "ping", 4) == 4);
			CU_ASSERT(SSL_write(cl.ssl, "pong", 4) == 4);
			CU_ASSERT(feed_server(s, &cl, step) == ST_OK);
			CU_ASSERT(s->got.b.len == 8 && memcmp(s->got.b.p, "pingpong", 8) == 0);
			/* Whole records gathered: one call when fed whole. */
			if (!step)
				CU_ASSERT(s->got.calls == 1);
			CU_ASSERT(tls_encrypt(&s->t, &iov, 1, s->buf) == ST_OK);
			feed_client(s, &cl);
			client_read(&cl, &back);
			CU_ASSERT(back.len == 4 && memcmp(back.p, "pong", 4) == 0);
			/* No certificate was asked for: no name to give. */
			CU_ASSERT(tls_peer_name(&s->t, false, err, sizeof(err)) == -1);
			free(back.p);
			client_fini(&cl);
			server_fini(s);
			free(s);
		}
	}
	tls_server_fini(&srv);
}

/* Number of TLS records in a ciphertext stream (5-byte headers). */
static unsigned count_records(const struct bytes *b)
{
	unsigned n = 0;

	for (size_t off = 0; off + 5 <= b->len; n++)
		off += 5 + ((size_t)b->p[off + 3] << 8 | b->p[off + 4]);
	return n;
}

static void test_batch_records(void)
{
	struct config_tls c;
	struct tls_server srv;
	struct server *s = malloc(sizeof(*s));
	struct client cl;
	struct bytes want = {0}, back = {0};
	struct iovec iov[600];
	uint8_t *big = malloc(100000), *small = malloc(600 * 37);
	uint8_t *stage = malloc(TLS_RECORD_MAX);
	char err[256];
	unsigned n = 0;

	config_server(&c, "server");
	CU_ASSERT_FATAL(tls_server_init(&srv, &c, err, sizeof(err)) == ST_OK);
	server_init(s, &srv);
	client_init(&cl, 0, NULL, NULL);
	CU_ASSERT_FATAL(handshake(s, &cl, 0));
	s->wire.len = 0;
	/* 500 packets of 37 bytes: 18,500 bytes, two records, not 500. */
	for (unsigned i = 0; i < 500; i++, n++) {
		memset(small + i * 37, (int)i, 37);
		iov[n] = (struct iovec){small + i * 37, 37};
		bytes_add(&want, small + i * 37, 37);
	}
	CU_ASSERT(tls_encrypt(&s->t, iov, n, stage) == ST_OK);
	CU_ASSERT(count_records(&s->wire) == 2);
	feed_client(s, &cl);
	client_read(&cl, &back);
	CU_ASSERT(back.len == want.len && memcmp(back.p, want.p, want.len) == 0);
	/* A small piece, a large one, a small one: records stay full where they can. */
	back.len = want.len = 0;
	for (size_t i = 0; i < 100000; i++)
		big[i] = (uint8_t)(i * 13 + (i >> 9));
	iov[0] = (struct iovec){small, 10};
	iov[1] = (struct iovec){big, 100000};
	iov[2] = (struct iovec){small + 10, 20};
	for (unsigned i = 0; i < 3; i++)
		bytes_add(&want, iov[i].iov_base, iov[i].iov_len);
	CU_ASSERT(tls_encrypt(&s->t, iov, 3, stage) == ST_OK);
	CU_ASSERT(count_records(&s->wire) == (100030 + TLS_RECORD_MAX - 1) / TLS_RECORD_MAX);
	feed_client(s, &cl);
	client_read(&cl, &back);
	CU_ASSERT(back.len == want.len && memcmp(back.p, want.p, want.len) == 0);
	free(back.p);
	free(want.p);
	free(big);
	free(small);
	free(stage);
	client_fini(&cl);
	server_fini(s);
	free(s);
	tls_server_fini(&srv);
}

static void test_refused_input(void)
{
	static const char *const inputs[] = {
	        "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00", /* a plaintext MQTT CONNECT */
	        "GET / HTTP/1.1\r\n\r\n",
	        "\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", /* a ClientHello that is not one */
	};
	static const size_t lens[] = {14, 18, 10};
	struct config_tls c;
	struct tls_server srv;
	char err[256];

	config_server(&c, "server");
	CU_ASSERT_FATAL(tls_server_init(&srv, &c, err, sizeof(err)) == ST_OK);
	for (unsigned i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct server *s = malloc(sizeof(*s));
		int ret;

		server_init(s, &srv);
		ret = tls_input(&s->t, (const uint8_t *)inputs[i], lens[i], s->buf, sizeof(s->buf),
		                on_plain, &s->got);
		CU_ASSERT(ret == ST_ERR_PROTOCOL);
		CU_ASSERT(s->t.why[0] != '\0');
		CU_ASSERT(!s->t.established && s->got.calls == 0);
		/* Output before the handshake is refused too. */
		CU_ASSERT(tls_encrypt(&s->t, &(struct iovec){(void *)"x", 1}, 1, s->buf) ==
		          ST_ERR_PROTOCOL);
		server_fini(s);
		free(s);
	}
	CU_ASSERT(ERR_peek_error() == 0); /* the engine leaves the thread's error queue empty */
	tls_server_fini(&srv);
}

static void test_close_and_stop(void)
{
	struct config_tls c;
	struct tls_server srv;
	struct server *s = malloc(sizeof(*s));
	struct client cl;
	char err[256];

	config_server(&c, "server");
	CU_ASSERT_FATAL(tls_server_init(&srv, &c, err, sizeof(err)) == ST_OK);
	server_init(s, &srv);
	client_init(&cl, 0, NULL, NULL);
	CU_ASSERT_FATAL(handshake(s, &cl, 0));
	/* 96 KiB, more than one gathering buffer: the callback stops after its first call. */
	for (unsigned i = 0; i < 12; i++) {
		static uint8_t chunk[8192];

		CU_ASSERT(SSL_write(cl.ssl, chunk, sizeof(chunk)) == (int)sizeof(chunk));
	}
	s->got.stop_after = 1;
	CU_ASSERT(feed_server(s, &cl, 0) == ST_OK);
	CU_ASSERT(s->got.calls == 1 && s->got.b.len < 12 * 8192);
	/* What follows is dropped with the connection: a new one for close_notify. */
	client_fini(&cl);
	server_fini(s);
	server_init(s, &srv);
	client_init(&cl, 0, NULL, NULL);
	CU_ASSERT_FATAL(handshake(s, &cl, 0));
	s->wire.len = 0;
	/* close_notify from the client: the server sees it, and answers with its own. */
	CU_ASSERT(SSL_write(cl.ssl, "bye", 3) == 3);
	CU_ASSERT(SSL_shutdown(cl.ssl) == 0);
	CU_ASSERT(feed_server(s, &cl, 0) == ST_OK);
	CU_ASSERT(s->t.peer_closed);
	CU_ASSERT(s->got.b.len == 3); /* what came before it counts */
	tls_close_notify(&s->t);
	CU_ASSERT(s->wire.len > 0);
	client_fini(&cl);
	server_fini(s);
	free(s);
	tls_server_fini(&srv);
}

static void test_client_certificates(void)
{
	const char *subj[] = {"C",          "GB", "O",           "Starling", "OU",
	                      "Production", "CN", "test client", NULL};
	const char *old_subj[] = {"CN", "old", NULL};
	EVP_PKEY *k = key_new();
	X509 *x = cert_new(k, subj, false, 0, 30), *old = cert_new(k, old_subj, false, -60, -30);
	struct config_tls c;
	struct tls_server srv;
	struct server *s = malloc(sizeof(*s));
	struct client cl;
	char err[256], name[256];

	write_pem("client.crt", x, NULL);
	write_pem("client.key", NULL, k);
	write_pem("old.crt", old, NULL);
	config_server(&c, "server");
	c.require_certificate = true;
	CU_ASSERT_FATAL(tls_server_init(&srv, &c, err, sizeof(err)) == ST_OK);
	server_init(s, &srv);
	client_init(&cl, 0, "client.crt", "client.key");
	CU_ASSERT_FATAL(handshake(s, &cl, 0));
	/* TLS 1.3: the client's certificate comes with its Finished. */
	CU_ASSERT(tls_peer_name(&s->t, false, name, sizeof(name)) == 11);
	CU_ASSERT_STRING_EQUAL(name, "test client");
	CU_ASSERT(tls_peer_name(&s->t, true, name, sizeof(name)) > 0);
	CU_ASSERT_STRING_EQUAL(name, "CN=test client,OU=Production,O=Starling,C=GB");
	CU_ASSERT(tls_peer_name(&s->t, true, name, 10) == -1); /* does not fit */
	client_fini(&cl);
	server_fini(s);
	/* A CN with a NUL inside could pass for "ab": no identity (its subject is escaped). */
	{
		X509 *nul = cert_new(k, old_subj, false, 0, 30);
		X509_NAME *nn = X509_NAME_new();

		X509_NAME_add_entry_by_txt(nn, "CN", MBSTRING_ASC, (const unsigned char *)"ab\0cd",
		                           5, -1, 0);
		X509_set_subject_name(nul, nn);
		X509_sign(nul, ca_key, EVP_sha256());
		write_pem("nul.crt", nul, NULL);
		X509_NAME_free(nn);
		X509_free(nul);
	}
	server_init(s, &srv);
	client_init(&cl, 0, "nul.crt", "client.key");
	CU_ASSERT_FATAL(handshake(s, &cl, 0));
	CU_ASSERT(tls_peer_name(&s->t, false, name, sizeof(name)) == -1);
	CU_ASSERT(tls_peer_name(&s->t, true, name, sizeof(name)) > 0);
	CU_ASSERT(strstr(name, "CN=ab") == name && strlen(name) > 5);
	client_fini(&cl);
	server_fini(s);
	/* No certificate, and an expired one: refused, saying why. */
	for (unsigned i = 0; i < 2; i++) {
		server_init(s, &srv);
		client_init(&cl, 0, i ? "old.crt" : NULL, i ? "client.key" : NULL);
		CU_ASSERT(!handshake(s, &cl, 0));
		CU_ASSERT(s->last == ST_ERR_PROTOCOL);
		CU_ASSERT(strstr(s->t.why, i ? "expired" : "did not return a certificate") != NULL);
		client_fini(&cl);
		server_fini(s);
	}
	free(s);
	X509_free(x);
	X509_free(old);
	EVP_PKEY_free(k);
	tls_server_fini(&srv);
}

static void test_min_version(void)
{
	struct config_tls c;
	struct tls_server srv;
	struct server *s = malloc(sizeof(*s));
	struct client cl;
	char err[256];

	config_server(&c, "server");
	c.version = CONFIG_TLS_V13;
	CU_ASSERT_FATAL(tls_server_init(&srv, &c, err, sizeof(err)) == ST_OK);
	server_init(s, &srv);
	client_init(&cl, TLS1_2_VERSION, NULL, NULL);
	CU_ASSERT(!handshake(s, &cl, 0));
	CU_ASSERT(strstr(s->t.why, "protocol") != NULL);
	client_fini(&cl);
	server_fini(s);
	free(s);
	tls_server_fini(&srv);
}

/* The CN of the certificate the client was shown. */
static void server_cn(struct client *cl, char *out, size_t cap)
{
	X509 *x = SSL_get0_peer_certificate(cl->ssl);

	out[0] = '\0';
	if (x)
		X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)cap);
}

static void copy_file(const char *from, const char *to)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "cp %s %s", path(from), path(to));
	CU_ASSERT_FATAL(system(cmd) == 0);
}

static void test_reload(void)
{
	struct config_tls c;
	struct tls_server srv;
	struct server *s1 = malloc(sizeof(*s1)), *s2 = malloc(sizeof(*s2));
	struct client c1, c2;
	struct bytes back = {0};
	char err[256], cn[64];

	copy_file("server.crt", "live.crt");
	copy_file("server.key", "live.key");
	config_server(&c, "live");
	CU_ASSERT_FATAL(tls_server_init(&srv, &c, err, sizeof(err)) == ST_OK);
	server_init(s1, &srv);
	client_init(&c1, 0, NULL, NULL);
	CU_ASSERT_FATAL(handshake(s1, &c1, 0));
	server_cn(&c1, cn, sizeof(cn));
	CU_ASSERT_STRING_EQUAL(cn, "server one");
	/* New files: new connections get them, the existing one goes on with its own. */
	copy_file("server2.crt", "live.crt");
	copy_file("server2.key", "live.key");
	CU_ASSERT(tls_server_reload(&srv, err, sizeof(err)) == ST_OK);
	server_init(s2, &srv);
	client_init(&c2, 0, NULL, NULL);
	CU_ASSERT_FATAL(handshake(s2, &c2, 0));
	server_cn(&c2, cn, sizeof(cn));
	CU_ASSERT_STRING_EQUAL(cn, "server two");
	CU_ASSERT(tls_encrypt(&s1->t, &(struct iovec){(void *)"old", 3}, 1, s1->buf) == ST_OK);
	feed_client(s1, &c1);
	client_read(&c1, &back);
	CU_ASSERT(back.len == 3 && memcmp(back.p, "old", 3) == 0);
	client_fini(&c2);
	server_fini(s2);
	/* A broken key: the reload fails naming it, and the last good context stays. */
	copy_file("ca.crt", "live.key");
	CU_ASSERT(tls_server_reload(&srv, err, sizeof(err)) == ST_ERR_CONFIG);
	CU_ASSERT(strstr(err, "keyfile") != NULL && strstr(err, "live.key") != NULL);
	unlink(path("live.crt"));
	CU_ASSERT(tls_server_reload(&srv, err, sizeof(err)) == ST_ERR_CONFIG);
	CU_ASSERT(strstr(err, "No such file") != NULL);
	server_init(s2, &srv);
	client_init(&c2, 0, NULL, NULL);
	CU_ASSERT_FATAL(handshake(s2, &c2, 0));
	server_cn(&c2, cn, sizeof(cn));
	CU_ASSERT_STRING_EQUAL(cn, "server two");
	free(back.p);
	client_fini(&c1);
	client_fini(&c2);
	server_fini(s1);
	server_fini(s2);
	free(s1);
	free(s2);
	tls_server_fini(&srv);
}

static void test_bad_config(void)
{
	struct config_tls c;
	struct tls_server srv;
	char err[256];

	config_server(&c, "server");
	snprintf(c.keyfile, sizeof(c.keyfile), "%s", path("server2.key"));
	CU_ASSERT(tls_server_init(&srv, &c, err, sizeof(err)) == ST_ERR_CONFIG);
	CU_ASSERT(strstr(err, "server2.key") != NULL);
	tls_server_fini(&srv);
	config_server(&c, "server");
	c.cafile[0] = '\0';
	c.require_certificate = true;
	CU_ASSERT(tls_server_init(&srv, &c, err, sizeof(err)) == ST_ERR_CONFIG);
	CU_ASSERT(strstr(err, "require_certificate") != NULL);
	tls_server_fini(&srv);
	config_server(&c, "server");
	snprintf(c.ciphers_tls13, sizeof(c.ciphers_tls13), "TLS_NOTHING");
	CU_ASSERT(tls_server_init(&srv, &c, err, sizeof(err)) == ST_ERR_CONFIG);
	CU_ASSERT(strstr(err, "ciphers_tls1.3 TLS_NOTHING") != NULL);
	tls_server_fini(&srv);
	CU_ASSERT(ERR_peek_error() == 0);
}

static void test_ktls_probe(void)
{
	char why[200] = "";

	/* Whatever the kernel says, the probe explains it and leaks nothing. */
	(void)tls_ktls_available(why, sizeof(why));
	CU_ASSERT(why[0] != '\0');
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"handshake and data, 1.2 and 1.3, whole and byte by byte",
	         test_handshake_and_data},
	        {"a batch becomes few full records", test_batch_records},
	        {"plaintext and garbage refused", test_refused_input},
	        {"close_notify, callback stops", test_close_and_stop},
	        {"client certificates and names", test_client_certificates},
	        {"tls_version is a minimum", test_min_version},
	        {"reload swaps for new connections only", test_reload},
	        {"bad configuration", test_bad_config},
	        {"kernel TLS probe", test_ktls_probe},
	        {NULL, NULL},
	};

	if (suite_init() != 0)
		return 1;
	tu_add_suite("tls", tests);
	{
		int ret = tu_run_registry();

		return suite_fini() != 0 ? 1 : ret;
	}
}
