/*
 * An HTTP/1.x request head (RFC 9112): the request line and the header fields up to the blank
 * line, parsed in place. The parser takes the caller's bytes and returns slices into them; it
 * never allocates, copies or reads past `len`. It is for the one request a WebSocket client
 * sends before its connection upgrades, so it is strict and small: no obsolete line folding,
 * at most HTTP_HEADERS_MAX fields, and the caller bounds the head's size.
 */
#ifndef STARLING_HTTP_REQUEST_H
#define STARLING_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEADERS_MAX 48 /* header fields kept; more is an error (431) */

/* Bytes borrowed from the caller's buffer; not NUL-terminated. */
struct http_slice {
	const char *p; /* first byte */
	size_t len;    /* bytes */
};

struct http_header {
	struct http_slice name;  /* field name, as sent (compare without case) */
	struct http_slice value; /* value without surrounding blanks */
};

struct http_request {
	struct http_slice method; /* "GET" */
	struct http_slice target; /* request-target: "/mqtt" */
	uint8_t minor;            /* HTTP/1.<minor> */
	unsigned nheaders;        /* entries of headers used */
	struct http_header headers[HTTP_HEADERS_MAX];
};

/*
 * Parses the head at p[0..len). Returns its length (the request line, the fields and the blank
 * line, > 0), 0 when the blank line has not arrived yet, or a negative HTTP status for a head
 * that can never be valid: -400 (malformed), -431 (more than HTTP_HEADERS_MAX fields), -505
 * (not HTTP/1.x). req's slices point into p.
 */
long http_parse_request(const uint8_t *p, size_t len, struct http_request *req);

/* The first field named `name` (ASCII, any case), or NULL. */
const struct http_slice *http_header_get(const struct http_request *req, const char *name);

/* Whether comma-separated list v holds `token` (any case, blanks around elements ignored). */
bool http_list_has(struct http_slice v, const char *token);

/* Whether s equals the NUL-terminated str, ignoring ASCII case. */
bool http_slice_eq(struct http_slice s, const char *str);

#endif
