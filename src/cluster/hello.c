/* A client's connect announced to the other nodes (hello.h has the layout and why). */
#include "hello.h"

#include <string.h>

#include "envelope.h"
#include "starling/error.h"

static const uint8_t magic[2] = {0xC0, 0x48};

#define HELLO_VERSION 1

size_t cluster_hello_size(const struct cluster_hello *h)
{
	return 4 + h->node.len + 4 + 8 + 2 + h->client.len;
}

static uint8_t *put(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return p + n;
}

static uint64_t get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

long cluster_hello_encode(const struct cluster_hello *h, uint8_t *buf, size_t cap)
{
	size_t need = cluster_hello_size(h);
	uint8_t *p = buf;

	if (!cluster_node_id_is_valid(h->node.ptr, h->node.len) || h->client.len > UINT16_MAX)
		return ST_ERR_PROTOCOL;
	if (need > cap)
		return ST_ERR_NO_SPACE;
	*p++ = magic[0];
	*p++ = magic[1];
	*p++ = HELLO_VERSION;
	*p++ = (uint8_t)h->node.len;
	memcpy(p, h->node.ptr, h->node.len);
	p = put(p + h->node.len, h->epoch, 4);
	p = put(p, h->since_ns, 8);
	p = put(p, h->client.len, 2);
	if (h->client.len)
		memcpy(p, h->client.ptr, h->client.len);
	return (long)need;
}

int cluster_hello_decode(const uint8_t *buf, size_t len, struct cluster_hello *out)
{
	size_t i = 4;
	uint8_t n;

	memset(out, 0, sizeof(*out));
	if (len >= 2 && memcmp(buf, magic, 2) != 0)
		return ST_ERR_PROTOCOL;
	if (len < 4)
		return ST_ERR_LENGTH;
	if (buf[2] != HELLO_VERSION)
		return ST_ERR_PROTOCOL;
	n = buf[3];
	if (len - i < (size_t)n + 14)
		return ST_ERR_LENGTH;
	if (!cluster_node_id_is_valid(buf + i, n))
		return ST_ERR_PROTOCOL;
	out->node = (struct st_bytes){buf + i, n};
	i += n;
	out->epoch = (uint32_t)get(buf + i, 4);
	out->since_ns = get(buf + i + 4, 8);
	out->client.len = (uint32_t)get(buf + i + 12, 2);
	i += 14;
	if (len - i != out->client.len)
		return ST_ERR_LENGTH;
	out->client.ptr = buf + i;
	return ST_OK;
}

bool cluster_hello_wins(const struct cluster_hello *h, uint64_t since_ns, const uint8_t *here,
                        size_t here_len)
{
	size_t n = h->node.len < here_len ? h->node.len : here_len;
	int c;

	if (h->since_ns != since_ns)
		return h->since_ns > since_ns;
	c = memcmp(h->node.ptr, here, n);
	return c > 0 || (c == 0 && h->node.len > here_len);
}
