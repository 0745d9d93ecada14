/*
 * WebSocket opening handshakes (see upgrade.h). The accept key is base64(SHA-1(key + the
 * RFC's GUID)), by libcrypto as everything else of the broker's cryptography.
 */
#include "upgrade.h"

#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "base/b64.h"

#define HTTP_WS_GUID    "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HTTP_WS_KEY_LEN 24 /* base64 of the 16-byte nonce */

static int http_ws_refuse(struct http_ws_upgrade *u, int status, const char *why)
{
	u->why = why;
	return -status;
}

/* The first of `protocols` the client's Sec-WebSocket-Protocol fields offer, or NULL. */
static const char *http_ws_protocol(const struct http_request *req, const char *const *protocols)
{
	for (unsigned i = 0; i < req->nheaders; i++) {
		if (!http_slice_eq(req->headers[i].name, "Sec-WebSocket-Protocol"))
			continue;
		for (const char *const *p = protocols; *p; p++)
			if (http_list_has(req->headers[i].value, *p))
				return *p;
	}
	return NULL;
}

int http_ws_check(const struct http_request *req, const char *const *protocols,
                  struct http_ws_upgrade *u)
{
	const struct http_slice *up, *conn, *ver, *key;
	char buf[HTTP_WS_KEY_LEN + sizeof(HTTP_WS_GUID)];
	uint8_t nonce[16], digest[SHA_DIGEST_LENGTH];

	memset(u, 0, sizeof(*u));
	if (!http_slice_eq(req->method, "GET"))
		return http_ws_refuse(u, 405, "not a GET request");
	up = http_header_get(req, "Upgrade");
	conn = http_header_get(req, "Connection");
	if (!up || !conn || !http_list_has(*up, "websocket") || !http_list_has(*conn, "upgrade"))
		return http_ws_refuse(u, 426, "not a WebSocket upgrade request");
	ver = http_header_get(req, "Sec-WebSocket-Version");
	if (!ver || !http_slice_eq(*ver, "13"))
		return http_ws_refuse(u, 426, "WebSocket version is not 13");
	if (req->minor < 1)
		return http_ws_refuse(u, 400, "HTTP/1.0 cannot upgrade");
	if (!http_header_get(req, "Host"))
		return http_ws_refuse(u, 400, "no Host field");
	key = http_header_get(req, "Sec-WebSocket-Key");
	if (!key || key->len != HTTP_WS_KEY_LEN ||
	    b64_decode(key->p, key->len, nonce, sizeof(nonce)) != (long)sizeof(nonce))
		return http_ws_refuse(u, 400, "no valid Sec-WebSocket-Key");
	u->protocol = http_ws_protocol(req, protocols);
	if (!u->protocol)
		return http_ws_refuse(u, 400, "no supported subprotocol offered");
	memcpy(buf, key->p, HTTP_WS_KEY_LEN);
	memcpy(buf + HTTP_WS_KEY_LEN, HTTP_WS_GUID, sizeof(HTTP_WS_GUID) - 1);
	SHA1((const unsigned char *)buf, sizeof(buf) - 1, digest);
	b64_encode(digest, sizeof(digest), u->accept);
	return 0;
}

static size_t http_fits(int n, size_t cap)
{
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t http_ws_accept_response(const struct http_ws_upgrade *u, char *out, size_t cap)
{
	return http_fits(snprintf(out, cap,
	                          "HTTP/1.1 101 Switching Protocols\r\n"
	                          "Upgrade: websocket\r\n"
	                          "Connection: Upgrade\r\n"
	                          "Sec-WebSocket-Accept: %s\r\n"
	                          "Sec-WebSocket-Protocol: %s\r\n\r\n",
	                          u->accept, u->protocol),
	                 cap);
}

static const char *http_reason(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 426:
		return "Upgrade Required";
	case 431:
		return "Request Header Fields Too Large";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Error";
	}
}

size_t http_error_response(int status, const char *why, char *out, size_t cap)
{
	const char *extra = status == 426   ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
	                    : status == 405 ? "Allow: GET\r\n"
	                                    : "";
	size_t body = strlen(why) + 1;

	return http_fits(snprintf(out, cap,
	                          "HTTP/1.1 %d %s\r\n"
	                          "Connection: close\r\n"
	                          "%s"
	                          "Content-Type: text/plain\r\n"
	                          "Content-Length: %zu\r\n\r\n%s\n",
	                          status, http_reason(status), extra, body, why),
	                 cap);
}
