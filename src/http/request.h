/*
 * An HTTP/1.x request head parser (RFC 9112), picohttpparser's way: it takes the caller's
 * bytes and returns slices into them, the length of the head, "need more" or an error. No
 * allocation, no copy, never a read past len. It knows nothing of what is served.
 *
 * What it accepts: optional empty lines before the request line (RFC 9112 2.2), a method
 * token, a request-target of visible characters, HTTP/1.0 or HTTP/1.1, header fields as
 * `name: value` with lines ended by CRLF or a bare LF, and the empty line that ends the head.
 * It refuses obsolete line folding, blanks before a field's colon, control characters, an
 * HTTP/1.1 request without Host (RFC 9112 3.2), and a head longer than the caller's bound.
 * It reads what a server needs to frame the exchange: Connection (close, keep-alive),
 * Content-Length and Transfer-Encoding (a request that carries a body); and it keeps every
 * field (up to HTTP_HEADERS_MAX) for callers that look at more (the WebSocket upgrade).
 */
#ifndef STARLING_HTTP_REQUEST_H
#define STARLING_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEADERS_MAX 48 /* header fields kept; more is an error (431) */

/* Bytes and length, pointing into the caller's buffer. */
struct http_slice {
	const char *p; /* first byte, not NUL-terminated */
	size_t len;    /* bytes */
};

struct http_header {
	struct http_slice name;  /* field name, as sent (compare without case) */
	struct http_slice value; /* value without surrounding blanks */
};

struct http_request {
	struct http_slice method; /* "GET", as sent (methods are case-sensitive) */
	struct http_slice target; /* the request-target as sent: "/metrics?x=1" */
	struct http_slice path;   /* target up to '?' or '#': "/metrics" */
	uint8_t minor;            /* HTTP/1.minor: 0 or 1 */
	bool keep_alive;          /* the connection may serve another request after this one */
	bool has_body;            /* Content-Length > 0 or Transfer-Encoding: a body follows */
	size_t head_len;          /* bytes of the head, its final empty line included */
	unsigned nheaders;        /* entries of headers used */
	struct http_header headers[HTTP_HEADERS_MAX];
};

/*
 * Parses the request head at buf[0..len). Returns the head's length (> 0) with *req filled,
 * 0 when the head is incomplete and shorter than max (read more), or a negative HTTP status
 * to answer with before closing: -400 (malformed), -431 (no end of head within max bytes, or
 * more than HTTP_HEADERS_MAX fields), -505 (an HTTP version other than 1.0 and 1.1).
 */
long http_request_parse(const uint8_t *buf, size_t len, size_t max, struct http_request *req);

/* Whether s holds exactly the NUL-terminated string lit. */
bool http_slice_is(struct http_slice s, const char *lit);

/* Whether s equals the NUL-terminated str, ignoring ASCII case. */
bool http_slice_eq(struct http_slice s, const char *str);

/* The first field named `name` (ASCII, any case), or NULL. */
const struct http_slice *http_header_get(const struct http_request *req, const char *name);

/* Whether comma-separated list v holds `token` (any case, blanks around elements ignored). */
bool http_list_has(struct http_slice v, const char *token);

#endif
