/*
 * Static files of http_dir on a WebSocket listener (conn_http.h).
 */
#include "conn_http.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "broker.h"
#include "conn_ws.h"
#include "http/response.h"
#include "http/static.h"
#include "worker.h"

int conn_http_open_dirs(struct broker *b)
{
	for (unsigned i = 0; i < b->cfg.listener_count; i++) {
		const struct config_listener *l = &b->cfg.listeners[i];

		if (!l->opts.http_dir[0])
			continue;
		if (l->protocol != CONFIG_PROTO_WEBSOCKETS) {
			log_msg(&b->log, LOG_T_ERROR,
			        "Error: listener on port %u: http_dir needs protocol websockets.",
			        l->port);
			return ST_ERR_CONFIG;
		}
		b->http_dir_fd[i] = open(l->opts.http_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (b->http_dir_fd[i] < 0) {
			log_msg(&b->log, LOG_T_ERROR, "Error: http_dir %s: %s", l->opts.http_dir,
			        strerror(errno));
			return ST_ERR_CONFIG;
		}
	}
	return ST_OK;
}

void conn_http_close_dirs(struct broker *b)
{
	for (unsigned i = 0; i < CONFIG_LISTENERS_MAX; i++)
		if (b->http_dir_fd[i] >= 0) {
			close(b->http_dir_fd[i]);
			b->http_dir_fd[i] = -1;
		}
}

bool conn_http_wanted(const struct conn *c, const struct http_request *req)
{
	const struct http_slice *up = http_header_get(req, "upgrade");

	return c->w->b->http_dir_fd[c->listener] >= 0 && !(up && http_list_has(*up, "websocket"));
}

/* Queues the answer: head, then (unless HEAD) body; the connection closes after it. */
static void conn_http_answer(struct conn *c, unsigned status, const char *type, const uint8_t *body,
                             size_t len, bool head_only, const char *extra)
{
	struct conn_ws *ws = c->ws;
	char head[HTTP_RESPONSE_HEAD_MAX + HTTP_STATIC_PATH_MAX + 64];
	size_t n = http_response_head(head, sizeof(head), status, type, len, false, extra);

	ws->refused = true; /* nothing more is read: the answer, then the close */
	if (n && obuf_append(&ws->ctl, head, n) == ST_OK &&
	    (head_only || !len || obuf_append(&ws->ctl, body, len) == ST_OK))
		conn_want_flush(c);
	conn_close(c, false, "HTTP request answered");
}

/* An error answer with a one-line reason as its body. */
static void conn_http_error(struct conn *c, unsigned status, const char *why, bool head_only)
{
	char body[160];
	int n = snprintf(body, sizeof(body), "%u %s: %s\n", status, http_reason(status), why);

	conn_http_answer(c, status, "text/plain; charset=utf-8", (const uint8_t *)body,
	                 n > 0 ? (size_t)n : 0, head_only, NULL);
}

/* The file rel beneath the listener's directory, opened without following anything out. */
static int conn_http_open(struct conn *c, const char *rel)
{
	struct open_how how = {.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
	                       .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};

	return (int)syscall(SYS_openat2, c->w->b->http_dir_fd[c->listener], rel, &how, sizeof(how));
}

static unsigned conn_http_errno_status(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return 404;
	case EXDEV: /* a path that would leave the directory */
	case EACCES:
	case EPERM:
	case ELOOP:
		return 403;
	case ENAMETOOLONG:
		return 414;
	default:
		return 500;
	}
}

/* Reads the whole regular file fd (st_size bytes) and answers 200 with it. */
static void conn_http_file(struct conn *c, int fd, const struct stat *st, const char *rel,
                           bool head_only)
{
	size_t size = (size_t)st->st_size, got = 0;
	uint8_t *body = NULL;

	if (!head_only && size) {
		body = malloc(size);
		if (!body) {
			conn_http_error(c, 500, "out of memory", false);
			return;
		}
		while (got < size) {
			ssize_t r = pread(fd, body + got, size - got, (off_t)got);

			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got != size) {
			free(body);
			conn_http_error(c, 500, "the file changed while being read", false);
			return;
		}
	}
	conn_http_answer(c, 200, http_static_type(rel), body, size, head_only, NULL);
	free(body);
}

void conn_http_serve(struct conn *c, const struct http_request *req)
{
	struct worker *w = c->w;
	bool head_only = http_slice_is(req->method, "HEAD");
	char rel[HTTP_STATIC_PATH_MAX], loc[HTTP_STATIC_PATH_MAX + 32];
	unsigned status = 0;
	struct stat st = {0};
	long ret;
	int fd;

	if (!head_only && !http_slice_is(req->method, "GET")) {
		conn_http_answer(c, 405, NULL, NULL, 0, false, "Allow: GET, HEAD\r\n");
		return;
	}
	ret = http_static_path(req->path.p, req->path.len, rel, sizeof(rel));
	if (ret < 0) {
		conn_http_error(c, (unsigned)-ret, "bad path", head_only);
		return;
	}
	fd = conn_http_open(c, rel);
	if (fd < 0)
		status = conn_http_errno_status(errno);
	else if (fstat(fd, &st) != 0)
		status = 500;
	else if (S_ISDIR(st.st_mode) && req->path.len + 16 < sizeof(loc))
		status = 302;
	else if (!S_ISREG(st.st_mode))
		status = 403;
	else if ((uint64_t)st.st_size > CONN_HTTP_FILE_MAX)
		status = 500;
	if (log_enabled(&w->log, LOG_T_WEBSOCKETS))
		log_msg(&w->log, LOG_T_WEBSOCKETS, "HTTP %.*s %.*s on connection %llu: %u.",
		        (int)req->method.len, req->method.p, (int)req->path.len, req->path.p,
		        (unsigned long long)c->id, status ? status : 200);
	if (status == 302) {
		/* A directory: its index is served at "path/" (Mosquitto redirects the same way).
		 */
		snprintf(loc, sizeof(loc), "Location: %.*s/\r\n", (int)req->path.len, req->path.p);
		conn_http_answer(c, 302, NULL, NULL, 0, head_only, loc);
	} else if (status) {
		conn_http_error(c, status,
		                st.st_size > CONN_HTTP_FILE_MAX && status == 500
		                        ? "file larger than the 4 MiB served"
		                        : "cannot serve this path",
		                head_only);
	} else {
		conn_http_file(c, fd, &st, rel, head_only);
	}
	if (fd >= 0)
		close(fd);
}
