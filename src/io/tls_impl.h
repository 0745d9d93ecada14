/*
 * Between tls.c (the engine, the server side) and tls_client.c (the client side): the pieces
 * both use. Only files of this folder include it.
 */
#ifndef STARLING_TLS_IMPL_H
#define STARLING_TLS_IMPL_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "tls.h"

/* OpenSSL's last error as a short reason into buf (cap bytes), the queue emptied. */
const char *tls_reason(char *buf, size_t cap);

/* ST_ERR_CONFIG with "opt PATH: reason" in err (a file that cannot be opened: strerror). */
int tls_file_error(const char *opt, const char *path, char *err, size_t errlen);

/* Loads a certificate chain and its key into ctx, checked to match; ST_OK or ST_ERR_CONFIG. */
int tls_ctx_cert(SSL_CTX *ctx, const char *certfile, const char *keyfile, char *err, size_t errlen);

/* Fills the extension caches of ctx's certificates before other threads use it (tls.c). */
void tls_ctx_warm(SSL_CTX *ctx);

/* The custom BIO of the engine's connections (tls.h), or NULL: out of memory. */
BIO_METHOD *tls_bio_method_new(void);

/* Records in t->why why the connection failed; returns ST_ERR_PROTOCOL. */
int tls_fail(struct tls_conn *t, int ssl_err);

#endif
