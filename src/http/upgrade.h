/*
 * The server side of the WebSocket opening handshake (RFC 6455 section 4.2): whether a parsed
 * request head is a valid upgrade offering one of the caller's subprotocols, the 101 answer
 * with its Sec-WebSocket-Accept, and the error answers for what is not. It knows the HTTP and
 * WebSocket rules only; which subprotocols mean what is the caller's business.
 */
#ifndef STARLING_HTTP_UPGRADE_H
#define STARLING_HTTP_UPGRADE_H

#include <stddef.h>

#include "request.h"

#define HTTP_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

struct http_ws_upgrade {
	char accept[HTTP_WS_ACCEPT_LEN + 1]; /* Sec-WebSocket-Accept, NUL-terminated */
	const char *protocol;                /* the subprotocol chosen: one of the caller's */
	const char *why;                     /* why the request was refused (static text) */
};

/*
 * Checks req as an opening handshake. `protocols` is the caller's NULL-terminated list of
 * subprotocols; the first the client offers is chosen. Returns 0, or a negative HTTP status
 * with u->why set: -405 (not GET), -426 (not an upgrade to websocket, or a version other than
 * 13: the answer names version 13), -400 (HTTP/1.0, no Host, a key that is not 16 bytes in
 * base64, none of the subprotocols offered).
 */
int http_ws_check(const struct http_request *req, const char *const *protocols,
                  struct http_ws_upgrade *u);

/* Writes the 101 answer for u into out (cap bytes); returns its length, 0 if it does not fit. */
size_t http_ws_accept_response(const struct http_ws_upgrade *u, char *out, size_t cap);

/*
 * Writes the answer to a refused request (status 400, 404, 405, 426, 431, 505) into out; it
 * says `Connection: close` and carries no body beyond a short reason line. Returns its length,
 * 0 if it does not fit.
 */
size_t http_error_response(int status, const char *why, char *out, size_t cap);

#endif
