/*
 * http_dir: a WebSocket listener's plain HTTP requests answered with static files, as
 * Mosquitto serves them through libwebsockets (mosquitto.conf(5)). A request on such a
 * listener that is not a WebSocket upgrade gets the file its path names (GET and HEAD), a 404,
 * a 403 for anything outside the directory or not a regular file, a 302 to "path/" for a
 * directory (whose index.html is served), a 405 for other methods; then the connection closes
 * (Connection: close, no keep-alive). MQTT over WebSockets on the same listener is untouched.
 *
 * Safety: the path is decoded and checked by http/static.h (no ".." segment), and the file is
 * opened with openat2(RESOLVE_BENEATH) below a descriptor of the directory taken at start-up,
 * so neither "..", an absolute symbolic link nor one that climbs out can reach past it.
 * Bounds: a file over CONN_HTTP_FILE_MAX is refused (500); the answer is queued whole in the
 * connection's output, counted in the worker's output memory. The file is read on the worker
 * thread with plain reads: these are a page's few small files, not the message path.
 */
#ifndef STARLING_CONN_HTTP_H
#define STARLING_CONN_HTTP_H

#include "conn.h"
#include "http/request.h"

#define CONN_HTTP_FILE_MAX (4u << 20) /* bytes of a file served */

struct broker;

/* Opens each listener's http_dir (as the user the broker runs as); an http_dir on a listener
 * that is not `protocol websockets`, or one that cannot be opened, stops the start. */
int conn_http_open_dirs(struct broker *b);

void conn_http_close_dirs(struct broker *b);

/* Whether req, on c's listener, is a plain HTTP request for http_dir rather than an upgrade. */
bool conn_http_wanted(const struct conn *c, const struct http_request *req);

/* Answers req (its slices valid during the call) and closes c once the answer is out. */
void conn_http_serve(struct conn *c, const struct http_request *req);

#endif
