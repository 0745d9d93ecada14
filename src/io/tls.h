/*
 * TLS for the io_uring loop: OpenSSL driven from memory, never from a socket, and nothing of
 * MQTT. A connection's SSL reads ciphertext from the bytes the ring's receive handed over and
 * writes ciphertext into a sink the caller provides (the caller's output buffer), so the
 * handshake and the records move through the same one-receive, one-send-per-iteration path
 * as plaintext: no blocking call, no socket BIO, no extra thread.
 *
 * The BIO under each SSL is a small custom one rather than BIO_s_mem: its read side serves
 * the receive buffer in place for the duration of tls_input() (OpenSSL copies a partial
 * record into its own record buffer, so nothing needs keeping across receives), and its write
 * side hands each record straight to the sink; a memory BIO would add a copy each way.
 *
 * A tls_server is one TLS listener: its settings and the current SSL_CTX. Connections take a
 * reference to the context when their SSL is made; tls_server_reload() builds a new context
 * from the files and swaps it in for new connections only, keeping the old one when a file is
 * broken. The swap and the reference taking share a mutex (a few instructions per new
 * connection); everything else of an SSL_CTX is thread-safe in OpenSSL.
 *
 * Threads: an SSL may move to another thread (the hand-off of a connection to its session's
 * home worker) as long as one thread uses it at a time; the caller's hand-off queue gives the
 * happens-before. OpenSSL's error queue is per thread, and is cleared after each failure.
 *
 * A tls_client is the other side, for the connections the broker makes (bridges): one
 * context per remote broker, built once from its options; its connections start their
 * handshake when made (tls_conn_init_client: the client speaks first) and then go through
 * the same tls_input/tls_encrypt as a server's, so the caller's receive and send path does not
 * care which side it is.
 *
 * Memory: a server-side SSL is made at the first ciphertext, so a TCP connection that never speaks
 * TLS costs nothing here; SSL_MODE_RELEASE_BUFFERS frees OpenSSL's 16 KiB record buffers whenever
 * they are empty, so an idle connection keeps only the SSL itself (a few KiB).
 */
#ifndef STARLING_TLS_H
#define STARLING_TLS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/config.h"

#define TLS_RECORD_MAX 16384 /* plaintext bytes of one TLS record */

struct ssl_ctx_st;
struct ssl_st;
struct bio_method_st;

/*
 * TLS-PSK: the key of `identity` for the connection whose sink argument is `conn` (the
 * caller's connection: it knows which keys are in force). Writes the key into key[0..cap) and
 * returns its length, or 0 to refuse the handshake. Called during tls_input().
 */
typedef unsigned (*tls_psk_fn)(void *conn, const char *identity, uint8_t *key, unsigned cap);

/* One TLS listener. */
struct tls_server {
	pthread_mutex_t lock;               /* orders ctx swaps against references taken */
	struct ssl_ctx_st *ctx;             /* current SSL_CTX (one reference held here) */
	struct bio_method_st *bio_method;   /* the memory BIO of its connections */
	struct config_tls cfg;              /* the options, for reloads */
	bool use_identity;                  /* use_identity_as_username (wins over subject) */
	bool use_subject;                   /* use_subject_as_username */
	bool lock_ready;                    /* lock was initialised */
	tls_psk_fn psk;                     /* TLS-PSK keys (psk_hint set), or NULL: certificates */
	char psk_hint[CONFIG_PSK_HINT_MAX]; /* the identity hint sent to clients */
};

/*
 * Ciphertext produced by an SSL: appends p[0..n) to the caller's output; returns 0, or a
 * negative value when it cannot (out of memory), which fails the connection.
 */
typedef int (*tls_sink_fn)(void *ctx, const uint8_t *p, size_t n);

/*
 * Plaintext decrypted by tls_input: the caller parses p[0..n) (valid during the call only).
 * Returns false to stop decrypting (the caller closed the connection).
 */
typedef bool (*tls_plain_fn)(void *ctx, const uint8_t *p, size_t n);

#define TLS_PSK_IDENTITY_MAX 128 /* OpenSSL's PSK_MAX_IDENTITY_LEN */
#define TLS_PSK_KEY_MAX      512 /* OpenSSL's PSK_MAX_PSK_LEN */

/*
 * What a client context is made of (a bridge's bridge_* options). Strings are borrowed for
 * the call; NULL or "" is "not set".
 */
struct tls_client_opts {
	const char *cafile;       /* PEM CAs that verify the server; with capath unset as well, the
	                             system's default CAs (unless PSK) */
	const char *capath;       /* directory of hashed PEM CAs */
	const char *certfile;     /* PEM client certificate (chain), with keyfile */
	const char *keyfile;      /* its private key */
	uint8_t version;          /* enum config_tls_version: the lowest version offered (TLS 1.2
	                             by default, as Mosquitto's bridge_tls_version) */
	bool insecure;            /* bridge_insecure: the chain is verified, the host name is not */
	const char *alpn;         /* protocol names offered, comma-separated ("mqtt"), or NULL */
	const char *psk_identity; /* TLS-PSK instead of certificates: the identity sent ... */
	const uint8_t *psk_key;   /* ... and the key (decoded bytes: the caller decodes the
	                             hex the way the broker's psk_file does) */
	unsigned psk_key_len;     /* bytes of psk_key, 1..TLS_PSK_KEY_MAX */
	bool require_ocsp;        /* bridge_require_ocsp: the server must staple a good OCSP
	                             response for its certificate (tls_client_init says how) */
};

/*
 * The client side: one context per remote endpoint. It must outlive its connections (their
 * BIOs use its method); the SSL_CTX is reference-counted by OpenSSL and thread-safe.
 */
struct tls_client {
	struct ssl_ctx_st *ctx;           /* the SSL_CTX (one reference held here) */
	struct bio_method_st *bio_method; /* the memory BIO of its connections */
	bool insecure;                    /* no host name check */
	bool require_ocsp;                /* a stapled OCSP response is required */
	bool psk;                         /* TLS-PSK: identity and key below, no certificates */
	char psk_identity[TLS_PSK_IDENTITY_MAX + 1];
	uint8_t psk_key[TLS_PSK_KEY_MAX];
	unsigned psk_key_len;
};

/* One connection's TLS state; embedded in (or allocated with) the caller's connection. */
struct tls_conn {
	struct tls_server *srv; /* listener, borrowed (outlives its connections); NULL: client */
	struct tls_client *cli; /* client context, borrowed (outlives its connections); NULL:
	                           server */
	struct ssl_st *ssl;     /* made at the first ciphertext; NULL before */
	tls_sink_fn sink;       /* where ciphertext goes */
	void *sink_ctx;         /* its argument */
	const uint8_t *in;      /* ciphertext being fed (tls_input only) */
	size_t in_len;          /* bytes of it not yet taken by OpenSSL */
	bool established;       /* the handshake completed */
	bool peer_closed;       /* close_notify received: no more plaintext will come */
	bool why_kept;          /* why was written by a check of the handshake (OCSP) */
	char why[160];          /* why the connection failed (for the log) */
};

/*
 * Builds the listener's context from cfg (copied): certificate and key (checked to match),
 * CAs, CRL, versions, ciphers. On failure returns ST_ERR_CONFIG with err naming the file or
 * option and OpenSSL's reason.
 */
int tls_server_init(struct tls_server *s, const struct config_tls *cfg, char *err, size_t errlen);

/*
 * The same for a listener with TLS-PSK (mosquitto.conf's psk_hint): the hint is sent to
 * clients and psk looks their keys up; a certificate (certfile and keyfile) is optional.
 * As in Mosquitto, a PSK listener speaks TLS 1.2 only: tls_version tlsv1.3 is refused.
 */
int tls_server_init_psk(struct tls_server *s, const struct config_tls *cfg, const char *psk_hint,
                        tls_psk_fn psk, char *err, size_t errlen);

/*
 * Re-reads certfile, keyfile, cafile, capath and crlfile into a new context and makes it the
 * one new connections use; existing connections keep theirs. On failure returns
 * ST_ERR_CONFIG with err saying why, and the old context stays in force. Any thread.
 */
int tls_server_reload(struct tls_server *s, char *err, size_t errlen);

void tls_server_fini(struct tls_server *s);

/* Prepares t for a new server-side connection of srv (no allocation until tls_input). */
void tls_conn_init(struct tls_conn *t, struct tls_server *srv, tls_sink_fn sink, void *sink_ctx);

/*
 * Builds a client context from o: the CAs (or the system's), the client certificate (checked
 * to match its key), the lowest version, ALPN, or TLS-PSK. With PSK, only PSK cipher suites
 * of TLS 1.2 are offered (a TLS 1.3 server could otherwise fall back to a certificate that
 * nothing verifies; Mosquitto's PSK is TLS 1.2 only too), so version tlsv1.3 with PSK, and
 * certificates with PSK, are refused. With require_ocsp the client asks for the server's OCSP
 * status (status_request) and refuses the handshake unless a response is stapled, signed by the
 * certificate's CA or a responder it authorised (verified against the same CAs), valid now
 * (5 minutes of clock skew allowed), and says "good" for the server's certificate; why then
 * says which check failed. (require_ocsp with PSK is refused: there is no certificate.) On failure
 * returns ST_ERR_CONFIG with err naming the option or file and OpenSSL's reason (ST_ERR_NOMEM: out
 * of memory).
 */
int tls_client_init(struct tls_client *cl, const struct tls_client_opts *o, char *err,
                    size_t errlen);

void tls_client_fini(struct tls_client *cl);

/*
 * Prepares t for a connection of cl to host (the name or address the caller connected to;
 * copied): sends it as SNI when it is a name, checks the server's certificate for it (an
 * address as an IP address, a name with the usual wildcard rules) unless cl is insecure, and
 * starts the handshake: the ClientHello goes into the sink before this returns. ST_OK,
 * ST_ERR_NOMEM, or ST_ERR_PROTOCOL (t->why). Afterwards tls_input and tls_encrypt work as for
 * a server connection; a certificate refused fails tls_input with ST_ERR_PROTOCOL and t->why
 * "certificate verify failed: " and OpenSSL's verdict. tls_conn_free frees it, even on error.
 */
int tls_conn_init_client(struct tls_conn *t, struct tls_client *cl, const char *host,
                         tls_sink_fn sink, void *sink_ctx);

/* The ALPN protocol the server chose (NUL-terminated into out, cap bytes), or "": none. */
const char *tls_alpn_selected(const struct tls_conn *t, char *out, size_t cap);

/* Points the sink elsewhere (the connection moved to another worker's struct). */
static inline void tls_conn_set_sink(struct tls_conn *t, tls_sink_fn sink, void *sink_ctx)
{
	t->sink = sink;
	t->sink_ctx = sink_ctx;
}

/* Frees the SSL (and its reference to the context). */
void tls_conn_free(struct tls_conn *t);

/*
 * Feeds ciphertext p[0..n) (borrowed for the call): advances the handshake, sending its
 * messages through the sink, and hands every byte of plaintext to fn, gathered in buf (cap
 * bytes, at least TLS_RECORD_MAX) so that many small records make one call. Returns ST_OK
 * (check peer_closed), ST_ERR_NOMEM, or ST_ERR_PROTOCOL when the connection failed: a bad
 * handshake, a certificate refused, a record that does not decrypt; t->why says which. An
 * alert for the peer may then be in the sink.
 */
int tls_input(struct tls_conn *t, const uint8_t *p, size_t n, uint8_t *buf, size_t cap,
              tls_plain_fn fn, void *fn_ctx);

/*
 * Encrypts the plaintext of iov[0..iovcnt) in order into the sink, as records of
 * TLS_RECORD_MAX bytes (the last one shorter): small pieces are gathered in stage
 * (TLS_RECORD_MAX bytes) so that a batch of small packets becomes few records. ST_OK,
 * ST_ERR_NOMEM, or ST_ERR_PROTOCOL (t->why) if the connection cannot send.
 */
int tls_encrypt(struct tls_conn *t, const struct iovec *iov, unsigned iovcnt, uint8_t *stage);

/* Queues a close_notify alert into the sink (after the handshake; otherwise nothing). */
void tls_close_notify(struct tls_conn *t);

/*
 * The username the peer's certificate gives: its CN (identity) or, with subject, its whole
 * subject in RFC 2253 form ("CN=a,O=b,C=c"). Writes a NUL-terminated string into out (cap
 * bytes) and returns its length, or -1 when there is no verified certificate, no CN, or a CN
 * holding a NUL byte, or it does not fit.
 */
int tls_peer_name(const struct tls_conn *t, bool subject, char *out, size_t cap);

/* The PSK identity the handshake used (NUL-terminated), or NULL: none (a certificate). */
const char *tls_psk_identity(const struct tls_conn *t);

/* The negotiated protocol and cipher, for the log ("TLSv1.3", "TLS_AES_256_GCM_SHA384"). */
const char *tls_version_name(const struct tls_conn *t);
const char *tls_cipher_name(const struct tls_conn *t);

/*
 * Kernel TLS: whether this kernel has the "tls" upper-layer protocol (setsockopt TCP_ULP on a
 * connected TCP socket). Writes a sentence into why saying what was found.
 */
bool tls_ktls_available(char *why, size_t cap);

#endif
