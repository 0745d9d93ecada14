/*
 * Static files of a WebSocket listener's http_dir (mosquitto.conf(5)): the request path made
 * into a safe path relative to the directory, and the Content-Type of a file name. Pure
 * string work; opening the file (beneath the directory, openat2 RESOLVE_BENEATH) is the
 * caller's.
 *
 * Path rules: the path must start with '/'; %XX escapes are decoded (a malformed one, or one
 * that decodes to NUL or a control character, is a 400); a ".." segment, decoded or not, is a
 * 403, so nothing above the directory is named; empty and "." segments are dropped; a path
 * ending in '/' (the root included) names its index.html, as Mosquitto serves it.
 */
#ifndef STARLING_HTTP_STATIC_H
#define STARLING_HTTP_STATIC_H

#include <stddef.h>

#define HTTP_STATIC_PATH_MAX 1024 /* bytes of a relative path served */

/*
 * Writes the relative path of the request path p[0..len) (the target without its query)
 * into out (cap bytes, NUL-terminated). Returns its length, or a negative HTTP status: -400
 * (no leading '/', a bad escape, a control character), -403 (a ".." segment), -414 (longer
 * than cap - 1).
 */
long http_static_path(const char *p, size_t len, char *out, size_t cap);

/* The Content-Type of a file by its extension (text types with charset=utf-8), or
 * application/octet-stream. */
const char *http_static_type(const char *name);

#endif
