/*
 * HTTP/1.1 response heads: the status line and the header fields a small server sends
 * (Content-Type, Content-Length, Connection), written into the caller's buffer. Bodies are the
 * caller's: they follow the head in the same send.
 */
#ifndef STARLING_HTTP_RESPONSE_H
#define STARLING_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_RESPONSE_HEAD_MAX 512 /* room for any head http_response_head writes */

/* The reason phrase of a status this server sends ("Not Found"), or "Unknown". */
const char *http_reason(unsigned status);

/*
 * Writes the head of a response with `status` into buf[0..cap): the status line, Content-Type
 * (when not NULL), Content-Length, `Connection: close` unless keep_alive, the `extra` header
 * lines as given (each ending in CRLF; NULL: none), and the empty line. Returns its length,
 * or 0 if it does not fit (a programmer error with HTTP_RESPONSE_HEAD_MAX bytes and short
 * extra lines).
 */
size_t http_response_head(char *buf, size_t cap, unsigned status, const char *content_type,
                          size_t content_length, bool keep_alive, const char *extra);

#endif
