/*
 * HTTP/1.x request heads (request.h). The head is found first (the empty line that ends it),
 * then parsed line by line within it, so no step can run past the bytes the caller has: a
 * head without its end is "need more" until it reaches the bound, then an error.
 */
#include "request.h"

#include <string.h>

/* tchar of RFC 9110 5.6.2: the characters of a token (methods, field names). */
static bool http_is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool http_slice_is(struct http_slice s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && memcmp(s.p, lit, n) == 0;
}

static char http_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ASCII case-insensitive comparison of s with a literal. */
static bool http_slice_is_nocase(struct http_slice s, const char *lit)
{
	size_t n = strlen(lit);

	if (s.len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (http_lower(s.p[i]) != http_lower(lit[i]))
			return false;
	return true;
}

/*
 * Where the head ends: the offset just past its empty line (CRLF CRLF, or bare LFs), or 0 if
 * it is not in buf[from..len). Leading empty lines are the caller's to skip.
 */
static size_t http_head_end(const uint8_t *buf, size_t from, size_t len)
{
	for (size_t i = from; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* The next line of [*p, end): its bytes without CR LF; *p moves past its end. */
static struct http_slice http_line(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	struct http_slice s = {*p, (size_t)((nl ? nl : end) - *p)};

	if (s.len > 0 && s.p[s.len - 1] == '\r')
		s.len--;
	*p = nl ? nl + 1 : end;
	return s;
}

/* "HTTP/1.0" or "HTTP/1.1" into *minor: 0, -505 for another version, -400 if not a version. */
static int http_version(struct http_slice v, uint8_t *minor)
{
	if (v.len != 8 || memcmp(v.p, "HTTP/", 5) != 0 || v.p[6] != '.' || v.p[5] < '0' ||
	    v.p[5] > '9' || v.p[7] < '0' || v.p[7] > '9')
		return -400;
	if (v.p[5] != '1' || v.p[7] > '1')
		return -505;
	*minor = (uint8_t)(v.p[7] - '0');
	return 0;
}

/* method SP request-target SP HTTP-version */
static int http_request_line(struct http_slice l, struct http_request *req)
{
	const char *p = l.p, *end = l.p + l.len, *sp;
	size_t i;

	for (i = 0; i < l.len && http_is_tchar((unsigned char)p[i]); i++)
		;
	if (i == 0 || i == l.len || p[i] != ' ')
		return -400;
	req->method = (struct http_slice){p, i};
	p += i + 1;
	sp = memchr(p, ' ', (size_t)(end - p));
	if (!sp || sp == p)
		return -400;
	req->target = (struct http_slice){p, (size_t)(sp - p)};
	for (i = 0; i < req->target.len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c <= 0x20 || c >= 0x7f)
			return -400;
	}
	req->path = req->target;
	for (i = 0; i < req->target.len; i++)
		if (p[i] == '?' || p[i] == '#') {
			req->path.len = i;
			break;
		}
	return http_version((struct http_slice){sp + 1, (size_t)(end - sp - 1)}, &req->minor);
}

/* Content-Length: digits only; a body if not 0. */
static int http_content_length(struct http_slice v, struct http_request *req)
{
	bool nonzero = false;

	if (v.len == 0)
		return -400;
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return -400;
		nonzero |= v.p[i] != '0';
	}
	req->has_body |= nonzero;
	return 0;
}

/* Connection: a comma-separated list of options; close and keep-alive matter here. */
static void http_connection(struct http_slice v, struct http_request *req)
{
	const char *p = v.p, *end = v.p + v.len;

	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		struct http_slice opt = {p, (size_t)((comma ? comma : end) - p)};

		while (opt.len && (opt.p[0] == ' ' || opt.p[0] == '\t')) {
			opt.p++;
			opt.len--;
		}
		while (opt.len && (opt.p[opt.len - 1] == ' ' || opt.p[opt.len - 1] == '\t'))
			opt.len--;
		if (http_slice_is_nocase(opt, "close"))
			req->keep_alive = false;
		else if (http_slice_is_nocase(opt, "keep-alive"))
			req->keep_alive = true;
		p = comma ? comma + 1 : end;
	}
}

/* One `name: value` line; *host is set when it is Host. */
static int http_field(struct http_slice l, struct http_request *req, bool *host)
{
	struct http_slice name, value;
	size_t i;

	for (i = 0; i < l.len && http_is_tchar((unsigned char)l.p[i]); i++)
		;
	/* Obsolete folding (a line starting with a blank), a blank before the colon, no colon. */
	if (i == 0 || i == l.len || l.p[i] != ':')
		return -400;
	name = (struct http_slice){l.p, i};
	value = (struct http_slice){l.p + i + 1, l.len - i - 1};
	for (i = 0; i < value.len; i++) {
		unsigned char c = (unsigned char)value.p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -400;
	}
	while (value.len && (value.p[0] == ' ' || value.p[0] == '\t')) {
		value.p++;
		value.len--;
	}
	while (value.len && (value.p[value.len - 1] == ' ' || value.p[value.len - 1] == '\t'))
		value.len--;
	if (req->nheaders == HTTP_HEADERS_MAX)
		return -431;
	req->headers[req->nheaders++] = (struct http_header){name, value};
	if (http_slice_is_nocase(name, "host"))
		*host = true;
	else if (http_slice_is_nocase(name, "connection"))
		http_connection(value, req);
	else if (http_slice_is_nocase(name, "content-length"))
		return http_content_length(value, req);
	else if (http_slice_is_nocase(name, "transfer-encoding"))
		req->has_body = true;
	return 0;
}

/*
 * Whether the start of a request line that has not ended yet can no longer become one: a
 * method byte that is not a token character, or a control byte anywhere in the line.
 */
static bool http_line_cannot_be(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && http_is_tchar(p[i]))
		i++;
	if (i < n && p[i] != ' ')
		return true;
	for (; i < n; i++)
		if ((p[i] < 0x20 && p[i] != '\r' && p[i] != '\n') || p[i] == 0x7f)
			return true;
	return false;
}

long http_request_parse(const uint8_t *buf, size_t len, size_t max, struct http_request *req)
{
	size_t start = 0, end;
	const char *p, *stop;
	bool host = false;
	int ret;

	/* Empty lines before the request line are ignored (RFC 9112 2.2), within the bound. */
	while (start < len && (buf[start] == '\n' || buf[start] == '\r'))
		start++;
	end = http_head_end(buf, start, len);
	if (end == 0 && http_line_cannot_be(buf + start, len - start))
		return -400; /* not HTTP (an MQTT CONNECT on a WebSocket port): no need to wait */
	if (end == 0 || end > max)
		return len >= max || end > max ? -431 : 0;
	memset(req, 0, sizeof(*req));
	p = (const char *)buf + start;
	stop = (const char *)buf + end;
	ret = http_request_line(http_line(&p, stop), req);
	if (ret < 0)
		return ret;
	req->keep_alive = req->minor >= 1;
	for (;;) {
		struct http_slice l = http_line(&p, stop);

		if (l.len == 0)
			break;
		ret = http_field(l, req, &host);
		if (ret < 0)
			return ret;
	}
	if (req->minor >= 1 && !host)
		return -400;
	req->head_len = end;
	return (long)end;
}

bool http_slice_eq(struct http_slice s, const char *str)
{
	return http_slice_is_nocase(s, str);
}

const struct http_slice *http_header_get(const struct http_request *req, const char *name)
{
	for (unsigned i = 0; i < req->nheaders; i++)
		if (http_slice_is_nocase(req->headers[i].name, name))
			return &req->headers[i].value;
	return NULL;
}

bool http_list_has(struct http_slice v, const char *token)
{
	size_t i = 0;

	while (i < v.len) {
		size_t start, end;

		while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
			i++;
		start = i;
		while (i < v.len && v.p[i] != ',')
			i++;
		end = i;
		while (end > start && (v.p[end - 1] == ' ' || v.p[end - 1] == '\t'))
			end--;
		if (end > start &&
		    http_slice_is_nocase((struct http_slice){v.p + start, end - start}, token))
			return true;
	}
	return false;
}
