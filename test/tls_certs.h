/*
 * Certificates for the TLS client tests (test_tls_client.c, test_conn_tls_client.c), made with
 * OpenSSL's API into a temporary directory (EC P-256): a CA, a server certificate for
 * broker.test and 127.0.0.1 (subjectAltName), a client certificate signed by the same CA,
 * and a second CA that signed nothing of the server's; and a growing byte array with a
 * tls_sink_fn and a tls_plain_fn that append to it. Included by one test file each (its
 * functions are static). tls_certs_init() makes them, tls_certs_fini() removes them.
 */
#ifndef STARLING_TEST_TLS_CERTS_H
#define STARLING_TEST_TLS_CERTS_H

#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static char dir[] = "/tmp/starling-tlsc-test-XXXXXX"; /* the certificates' directory */
static EVP_PKEY *ca_key, *other_key;
static X509 *ca_cert, *other_cert;

/* A growing byte array: a side's sink, or the plaintext it received. */
struct bytes {
	uint8_t *p;
	size_t len, cap;
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
	bytes_add(ctx, p, n);
	return 0;
}

static bool on_plain(void *ctx, const uint8_t *p, size_t n)
{
	bytes_add(ctx, p, n);
	return true;
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

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!e)
		abort();
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}

/* A certificate for CN cn: a CA's own (issuer NULL), or one signed by issuer, with san. */
static X509 *cert_new(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                      const char *san)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	static long serial = 1;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 30 * 86400);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_set_pubkey(x, key);
	if (!issuer)
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
	if (san)
		add_ext(x, issuer, NID_subject_alt_name, san);
	X509_sign(x, issuer ? issuer_key : key, EVP_sha256());
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

/* name.crt and name.key, signed by the CA. */
static void make_leaf(const char *name, const char *cn, const char *san)
{
	EVP_PKEY *k = key_new();
	X509 *x = cert_new(k, cn, ca_cert, ca_key, san);
	char crt[64], key[64];

	snprintf(crt, sizeof(crt), "%s.crt", name);
	snprintf(key, sizeof(key), "%s.key", name);
	write_pem(crt, x, NULL);
	write_pem(key, NULL, k);
	X509_free(x);
	EVP_PKEY_free(k);
}

static int tls_certs_init(void)
{
	if (!mkdtemp(dir))
		return -1;
	ca_key = key_new();
	ca_cert = cert_new(ca_key, "Test CA", NULL, NULL, NULL);
	write_pem("ca.crt", ca_cert, NULL);
	other_key = key_new();
	other_cert = cert_new(other_key, "Other CA", NULL, NULL, NULL);
	write_pem("other-ca.crt", other_cert, NULL);
	make_leaf("server", "broker.test", "DNS:broker.test,IP:127.0.0.1");
	make_leaf("client", "bridge one", NULL);
	return 0;
}

static int tls_certs_fini(void)
{
	char cmd[128];

	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	X509_free(other_cert);
	EVP_PKEY_free(other_key);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
