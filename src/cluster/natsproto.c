/* The NATS client protocol without a socket (natsproto.h has the grammar and why). */
#include "natsproto.h"

#include <stdio.h>
#include <string.h>

#include "starling/error.h"

#define FIELDS_MAX 6 /* HMSG: name, subject, sid, reply, header bytes, total bytes */

static bool is_blank(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* Splits line[0..len) into fields; the count, or FIELDS_MAX + 1 when there are more. */
static unsigned split(const uint8_t *line, size_t len, struct st_bytes *f)
{
	unsigned n = 0;
	size_t i = 0;

	while (i < len) {
		size_t start;

		while (i < len && is_blank(line[i]))
			i++;
		if (i == len)
			break;
		if (n == FIELDS_MAX)
			return FIELDS_MAX + 1;
		start = i;
		while (i < len && !is_blank(line[i]))
			i++;
		f[n++] = (struct st_bytes){line + start, (uint32_t)(i - start)};
	}
	return n;
}

static bool name_is(struct st_bytes f, const char *name)
{
	size_t n = strlen(name);

	if (f.len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = f.ptr[i];

		if (c >= 'a' && c <= 'z')
			c = (uint8_t)(c - 'a' + 'A');
		if (c != (uint8_t)name[i])
			return false;
	}
	return true;
}

/* A decimal size: digits only, at most 10 of them (NATS sizes are 32-bit). */
static bool size_of(struct st_bytes f, size_t *out)
{
	uint64_t v = 0;

	if (f.len == 0 || f.len > 10)
		return false;
	for (uint32_t i = 0; i < f.len; i++) {
		if (f.ptr[i] < '0' || f.ptr[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(f.ptr[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (size_t)v;
	return true;
}

/* What follows a name on the line (INFO's JSON, -ERR's text), blanks trimmed at both ends. */
static struct st_bytes rest_of(const uint8_t *line, size_t len, size_t name_len)
{
	size_t a = name_len, b = len;

	while (a < b && is_blank(line[a]))
		a++;
	while (b > a && is_blank(line[b - 1]))
		b--;
	return (struct st_bytes){line + a, (uint32_t)(b - a)};
}

/* MSG and HMSG: the fields, then content of `total` bytes and CRLF after the line. */
static long parse_msg(const uint8_t *buf, size_t len, size_t line_end, const struct st_bytes *f,
                      unsigned n, bool headers, size_t max_payload, struct nats_op *op)
{
	unsigned sizes = headers ? 2 : 1;
	size_t hdr = 0, total = 0, at = line_end + 2;

	if (n != 3 + sizes && n != 4 + sizes)
		return ST_ERR_PROTOCOL;
	op->subject = f[1];
	op->sid = f[2];
	if (n == 4 + sizes)
		op->reply = f[3];
	if (!size_of(f[n - 1], &total) || (headers && !size_of(f[n - 2], &hdr)) || hdr > total)
		return ST_ERR_PROTOCOL;
	if (total > max_payload)
		return ST_ERR_TOO_LARGE;
	if (len - at < total + 2)
		return 0;
	if (buf[at + total] != '\r' || buf[at + total + 1] != '\n')
		return ST_ERR_PROTOCOL;
	op->headers = (struct st_bytes){buf + at, (uint32_t)hdr};
	op->payload = (struct st_bytes){buf + at + hdr, (uint32_t)(total - hdr)};
	return (long)(at + total + 2);
}

long nats_parse(const uint8_t *buf, size_t len, size_t max_payload, struct nats_op *op)
{
	struct st_bytes f[FIELDS_MAX];
	size_t end;
	unsigned n;
	const uint8_t *cr;

	memset(op, 0, sizeof(*op));
	cr = memchr(buf, '\n', len < NATS_LINE_MAX ? len : NATS_LINE_MAX);
	if (!cr)
		return len >= NATS_LINE_MAX ? ST_ERR_TOO_LARGE : 0;
	end = (size_t)(cr - buf);
	if (end == 0 || buf[end - 1] != '\r')
		return ST_ERR_PROTOCOL;
	end--; /* the line without its CRLF */
	n = split(buf, end, f);
	if (n == 0)
		return ST_ERR_PROTOCOL;
	if (name_is(f[0], "MSG")) {
		op->kind = NATS_OP_MSG;
		return n > FIELDS_MAX ? ST_ERR_PROTOCOL
		                      : parse_msg(buf, len, end, f, n, false, max_payload, op);
	}
	if (name_is(f[0], "HMSG")) {
		op->kind = NATS_OP_HMSG;
		return n > FIELDS_MAX ? ST_ERR_PROTOCOL
		                      : parse_msg(buf, len, end, f, n, true, max_payload, op);
	}
	if (name_is(f[0], "INFO") || name_is(f[0], "-ERR")) {
		op->kind = name_is(f[0], "INFO") ? NATS_OP_INFO : NATS_OP_ERR;
		op->text = rest_of(buf, end, (size_t)(f[0].ptr - buf) + f[0].len);
		if (op->kind == NATS_OP_ERR && op->text.len >= 2 && op->text.ptr[0] == '\'' &&
		    op->text.ptr[op->text.len - 1] == '\'')
			op->text = (struct st_bytes){op->text.ptr + 1, op->text.len - 2};
		if (op->kind == NATS_OP_INFO && op->text.len == 0)
			return ST_ERR_PROTOCOL;
		return (long)(end + 2);
	}
	if (n != 1)
		return ST_ERR_PROTOCOL;
	if (name_is(f[0], "PING"))
		op->kind = NATS_OP_PING;
	else if (name_is(f[0], "PONG"))
		op->kind = NATS_OP_PONG;
	else if (name_is(f[0], "+OK"))
		op->kind = NATS_OP_OK;
	else
		return ST_ERR_PROTOCOL;
	return (long)(end + 2);
}

size_t nats_pub_head_size(size_t subject_len, size_t reply_len, size_t n)
{
	char digits[24];

	return 4 + subject_len + (reply_len ? reply_len + 1 : 0) + 1 +
	       (size_t)snprintf(digits, sizeof(digits), "%zu", n) + 2;
}

/* Appends bytes to the output, or marks it overflowed. */
struct out {
	uint8_t *p, *end;
	bool over;
};

static void put(struct out *o, const void *s, size_t n)
{
	if (o->over || (size_t)(o->end - o->p) < n) {
		o->over = true;
		return;
	}
	memcpy(o->p, s, n);
	o->p += n;
}

static void put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_u64(struct out *o, uint64_t v)
{
	char d[24];
	int n = snprintf(d, sizeof(d), "%llu", (unsigned long long)v);

	put(o, d, (size_t)n);
}

static long done(const struct out *o, const uint8_t *buf)
{
	return o->over ? ST_ERR_NO_SPACE : (long)(o->p - buf);
}

long nats_pub_head(uint8_t *buf, size_t cap, const char *subject, size_t subject_len,
                   const char *reply, size_t reply_len, size_t n)
{
	struct out o = {buf, buf + cap, false};

	put_str(&o, "PUB ");
	put(&o, subject, subject_len);
	if (reply_len) {
		put_str(&o, " ");
		put(&o, reply, reply_len);
	}
	put_str(&o, " ");
	put_u64(&o, n);
	put_str(&o, "\r\n");
	return done(&o, buf);
}

long nats_sub(uint8_t *buf, size_t cap, const char *subject, size_t subject_len, const char *queue,
              size_t queue_len, uint64_t sid)
{
	struct out o = {buf, buf + cap, false};

	put_str(&o, "SUB ");
	put(&o, subject, subject_len);
	if (queue && queue_len) {
		put_str(&o, " ");
		put(&o, queue, queue_len);
	}
	put_str(&o, " ");
	put_u64(&o, sid);
	put_str(&o, "\r\n");
	return done(&o, buf);
}

long nats_unsub(uint8_t *buf, size_t cap, uint64_t sid)
{
	struct out o = {buf, buf + cap, false};

	put_str(&o, "UNSUB ");
	put_u64(&o, sid);
	put_str(&o, "\r\n");
	return done(&o, buf);
}

/* A JSON string: quotes, and \", \\ and control characters escaped. */
static void put_json(struct out *o, const char *s)
{
	put_str(o, "\"");
	for (; *s; s++) {
		uint8_t c = (uint8_t)*s;

		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};

			put(o, e, 2);
		} else if (c < 0x20) {
			char e[8];

			snprintf(e, sizeof(e), "\\u%04x", c);
			put(o, e, 6);
		} else {
			put(o, &c, 1);
		}
	}
	put_str(o, "\"");
}

long nats_connect(uint8_t *buf, size_t cap, const struct nats_connect *c)
{
	struct out o = {buf, buf + cap, false};

	put_str(&o, "CONNECT {\"verbose\":false,\"pedantic\":false,\"lang\":\"c\","
	            "\"version\":\"starling\",\"protocol\":1,\"headers\":true,"
	            "\"no_responders\":true,\"echo\":");
	put_str(&o, c->echo ? "true" : "false");
	put_str(&o, ",\"tls_required\":");
	put_str(&o, c->tls_required ? "true" : "false");
	if (c->name && c->name[0]) {
		put_str(&o, ",\"name\":");
		put_json(&o, c->name);
	}
	if (c->user && c->user[0]) {
		put_str(&o, ",\"user\":");
		put_json(&o, c->user);
		put_str(&o, ",\"pass\":");
		put_json(&o, c->pass ? c->pass : "");
	}
	put_str(&o, "}\r\n");
	return done(&o, buf);
}

bool nats_sid_value(struct st_bytes sid, uint64_t *out)
{
	uint64_t v = 0;

	if (sid.len == 0 || sid.len > 19)
		return false;
	for (uint32_t i = 0; i < sid.len; i++) {
		if (sid.ptr[i] < '0' || sid.ptr[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(sid.ptr[i] - '0');
	}
	*out = v;
	return true;
}
