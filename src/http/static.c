/*
 * http_dir paths and content types (static.h).
 */
#include "static.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Appends one decoded segment s[0..n) to out at *o, with a '/' before it unless first. */
static long static_segment(const char *s, size_t n, char *out, size_t cap, size_t *o)
{
	if (n == 0 || (n == 1 && s[0] == '.'))
		return 0;
	if (n == 2 && s[0] == '.' && s[1] == '.')
		return -403;
	if (*o + (*o ? 1 : 0) + n >= cap)
		return -414;
	if (*o)
		out[(*o)++] = '/';
	memcpy(out + *o, s, n);
	*o += n;
	return 0;
}

long http_static_path(const char *p, size_t len, char *out, size_t cap)
{
	char seg[HTTP_STATIC_PATH_MAX];
	size_t o = 0, n = 0;
	long rc;

	if (cap == 0 || len == 0 || p[0] != '/')
		return -400;
	for (size_t i = 1; i <= len; i++) {
		unsigned char c;

		if (i == len || p[i] == '/') {
			if ((rc = static_segment(seg, n, out, cap, &o)) < 0)
				return rc;
			n = 0;
			continue;
		}
		c = (unsigned char)p[i];
		if (c == '%') {
			int hi = i + 2 < len ? hex_val(p[i + 1]) : -1;
			int lo = hi >= 0 ? hex_val(p[i + 2]) : -1;

			if (lo < 0)
				return -400;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
			/* An escaped '/' would join segments past the ".." check. */
			if (c == '/')
				return -403;
		}
		if (c < 0x20 || c == 0x7f)
			return -400;
		if (n == sizeof(seg))
			return -414;
		seg[n++] = (char)c;
	}
	/* A directory's index: the root, or a path ending in '/'. */
	if (o == 0 || p[len - 1] == '/') {
		if ((rc = static_segment("index.html", 10, out, cap, &o)) < 0)
			return rc;
	}
	out[o] = '\0';
	return (long)o;
}

static const struct {
	const char *ext;
	const char *type;
} static_types[] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"json", "application/json"},
        {"map", "application/json"},
        {"txt", "text/plain; charset=utf-8"},
        {"xml", "application/xml"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"ico", "image/x-icon"},
        {"wasm", "application/wasm"},
        {"woff", "font/woff"},
        {"woff2", "font/woff2"},
        {"pdf", "application/pdf"},
};

const char *http_static_type(const char *name)
{
	const char *slash = strrchr(name, '/'), *dot = strrchr(name, '.');

	if (dot && (!slash || dot > slash))
		for (size_t i = 0; i < sizeof(static_types) / sizeof(static_types[0]); i++)
			if (strcasecmp(dot + 1, static_types[i].ext) == 0)
				return static_types[i].type;
	return "application/octet-stream";
}
