/*
 * HTTP/1.x request heads, parsed in place (see request.h). Lines end in CRLF; a bare LF is
 * accepted as RFC 9112 section 2.2 allows a recipient to. Field names are tokens, values any
 * visible bytes, blanks and obs-text; a control byte anywhere is an error.
 */
#include "request.h"

#include <string.h>

static bool http_is_tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool http_is_blank(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static uint8_t http_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 'a' - 'A') : c;
}

/* The line starting at p[0..len): its length without the line end in *n, the bytes up to the
 * next line in *next; false when no line end is there yet. */
static bool http_line(const uint8_t *p, size_t len, size_t *n, size_t *next)
{
	const uint8_t *lf = memchr(p, '\n', len);

	if (!lf)
		return false;
	*next = (size_t)(lf - p) + 1;
	*n = (size_t)(lf - p);
	if (*n > 0 && p[*n - 1] == '\r')
		(*n)--;
	return true;
}

/* "GET /target HTTP/1.1": exactly one space between the three parts. */
static long http_request_line(const uint8_t *p, size_t n, struct http_request *req)
{
	size_t i = 0, start;

	while (i < n && http_is_tchar(p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ' ')
		return -400;
	req->method = (struct http_slice){(const char *)p, i};
	start = ++i;
	while (i < n && p[i] > ' ' && p[i] != 0x7f)
		i++;
	if (i == start || i == n || p[i] != ' ')
		return -400;
	req->target = (struct http_slice){(const char *)p + start, i - start};
	i++;
	if (n - i != 8 || memcmp(p + i, "HTTP/", 5) != 0 || p[i + 6] != '.' || p[i + 5] < '0' ||
	    p[i + 5] > '9' || p[i + 7] < '0' || p[i + 7] > '9')
		return -400;
	if (p[i + 5] != '1')
		return -505;
	req->minor = (uint8_t)(p[i + 7] - '0');
	return 0;
}

/* Whether the start of a request line could still become one: a client speaking another
 * protocol (MQTT on a WebSocket port) is answered at once, not when the timeout fires. */
static bool http_partial_line_ok(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len && http_is_tchar(p[i]))
		i++;
	if (i < len && p[i] != ' ')
		return false;
	for (; i < len; i++)
		if ((p[i] < ' ' && p[i] != '\r') || p[i] == 0x7f)
			return false;
	return true;
}

/* "Name: value" into h. */
static long http_field(const uint8_t *p, size_t n, struct http_header *h)
{
	size_t i = 0, end;

	while (i < n && http_is_tchar(p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ':')
		return -400; /* also a blank before the colon (RFC 9112 5.1) and obs-fold */
	h->name = (struct http_slice){(const char *)p, i};
	i++;
	while (i < n && http_is_blank(p[i]))
		i++;
	end = n;
	while (end > i && http_is_blank(p[end - 1]))
		end--;
	for (size_t k = i; k < end; k++)
		if ((p[k] < ' ' && p[k] != '\t') || p[k] == 0x7f)
			return -400;
	h->value = (struct http_slice){(const char *)p + i, end - i};
	return 0;
}

long http_parse_request(const uint8_t *p, size_t len, struct http_request *req)
{
	size_t off = 0, n, next;
	long ret;

	memset(req, 0, sizeof(*req));
	/* RFC 9112 2.2 lets a server skip empty lines before the request line; a WebSocket
	 * client sends none, so they are refused like any other malformed head. */
	if (len >= 1 && (p[0] == '\r' || p[0] == '\n'))
		return -400;
	if (!http_line(p, len, &n, &next))
		return http_partial_line_ok(p, len) ? 0 : -400;
	ret = http_request_line(p, n, req);
	if (ret < 0)
		return ret;
	for (off = next;; off += next) {
		if (!http_line(p + off, len - off, &n, &next))
			return 0;
		if (n == 0)
			return (long)(off + next);
		if (req->nheaders == HTTP_HEADERS_MAX)
			return -431;
		ret = http_field(p + off, n, &req->headers[req->nheaders++]);
		if (ret < 0)
			return ret;
	}
}

bool http_slice_eq(struct http_slice s, const char *str)
{
	size_t n = strlen(str);

	if (s.len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (http_lower((uint8_t)s.p[i]) != http_lower((uint8_t)str[i]))
			return false;
	return true;
}

const struct http_slice *http_header_get(const struct http_request *req, const char *name)
{
	for (unsigned i = 0; i < req->nheaders; i++)
		if (http_slice_eq(req->headers[i].name, name))
			return &req->headers[i].value;
	return NULL;
}

bool http_list_has(struct http_slice v, const char *token)
{
	size_t i = 0;

	while (i < v.len) {
		size_t start, end;

		while (i < v.len && (http_is_blank((uint8_t)v.p[i]) || v.p[i] == ','))
			i++;
		start = i;
		while (i < v.len && v.p[i] != ',')
			i++;
		end = i;
		while (end > start && http_is_blank((uint8_t)v.p[end - 1]))
			end--;
		if (end > start &&
		    http_slice_eq((struct http_slice){v.p + start, end - start}, token))
			return true;
	}
	return false;
}
