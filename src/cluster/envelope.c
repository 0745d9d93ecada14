/*
 * The head of a PUBLISH between nodes (envelope.h has the layout and why it is not a NATS
 * header block). Encoding writes a few bytes and copies the properties; decoding checks every
 * field and returns views into the received data, so a message from another node costs no
 * allocation and no copy to read.
 */
#include "envelope.h"

#include <string.h>

#include "starling/error.h"
#include "starling/props.h"

static const uint8_t magic[2] = {0xC0, 0x53};

#define FLAG_QOS_MASK 0x03u
#define FLAG_RETAIN   0x04u

bool cluster_node_id_is_valid(const uint8_t *id, size_t len)
{
	if (len == 0 || len > CLUSTER_NODE_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (id[i] < 0x21 || id[i] > 0x7E)
			return false;
	return true;
}

size_t cluster_env_head_size(const struct cluster_msg *m)
{
	size_t v = st_varint_size(m->props.len);

	return CLUSTER_ENV_FIXED - 1 + m->origin.len + (v ? v : 1) + m->props.len +
	       CLUSTER_ENV_TAIL;
}

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static bool level_is_known(uint8_t level)
{
	return level == ST_MQTT_31 || level == ST_MQTT_311 || level == ST_MQTT_5;
}

long cluster_env_encode_head(const struct cluster_msg *m, uint8_t *buf, size_t cap)
{
	size_t need = cluster_env_head_size(m);
	uint8_t *w = buf;

	if (m->qos > 2 || !level_is_known(m->level) ||
	    !cluster_node_id_is_valid(m->origin.ptr, m->origin.len) ||
	    (m->props.len > 0 && m->level != ST_MQTT_5) || st_varint_size(m->props.len) == 0)
		return ST_ERR_PROTOCOL;
	if (need > cap)
		return ST_ERR_NO_SPACE;
	*w++ = magic[0];
	*w++ = magic[1];
	*w++ = CLUSTER_ENV_VERSION;
	*w++ = (uint8_t)(m->qos | (m->retain ? FLAG_RETAIN : 0));
	*w++ = m->level;
	*w++ = (uint8_t)m->origin.len;
	memcpy(w, m->origin.ptr, m->origin.len);
	w += m->origin.len;
	w += st_varint_encode(w, m->props.len);
	if (m->props.len > 0)
		memcpy(w, m->props.ptr, m->props.len);
	w += m->props.len;
	put_be(w, m->epoch, 4);
	put_be(w + 4, m->lane, 4);
	put_be(w + 8, m->seq, 8);
	put_be(w + 16, m->expiry_s, 4);
	w += CLUSTER_ENV_TAIL;
	return (long)(w - buf);
}

/* A forwarded block must not hold what belongs to one connection or one subscriber. */
static int check_props(struct st_bytes raw)
{
	struct st_props props;
	int rc;

	if (raw.len == 0)
		return ST_OK;
	rc = st_props_parse(raw, ST_PCTX_PUBLISH, &props);
	if (rc != ST_OK)
		return rc;
	if (st_props_has(&props, ST_PROP_TOPIC_ALIAS) ||
	    st_props_has(&props, ST_PROP_SUBSCRIPTION_ID))
		return ST_ERR_PROPERTY_PACKET;
	return ST_OK;
}

int cluster_env_decode(const uint8_t *buf, size_t len, struct cluster_msg *out)
{
	size_t i = CLUSTER_ENV_FIXED - 1;
	uint32_t props_len;
	uint8_t flags, n;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len < CLUSTER_ENV_FIXED)
		return len >= 2 && memcmp(buf, magic, 2) != 0 ? ST_ERR_PROTOCOL : ST_ERR_LENGTH;
	if (memcmp(buf, magic, 2) != 0 || buf[2] != CLUSTER_ENV_VERSION)
		return ST_ERR_PROTOCOL;
	flags = buf[3];
	if (flags & ~(FLAG_QOS_MASK | FLAG_RETAIN))
		return ST_ERR_PROTOCOL;
	if ((flags & FLAG_QOS_MASK) == 3)
		return ST_ERR_QOS;
	if (!level_is_known(buf[4]))
		return ST_ERR_PROTOCOL;
	n = buf[5];
	if (len - i < (size_t)n + 1)
		return ST_ERR_LENGTH;
	if (!cluster_node_id_is_valid(buf + i, n))
		return ST_ERR_PROTOCOL;
	out->origin = (struct st_bytes){buf + i, n};
	i += n;
	rc = st_varint_decode(buf + i, len - i, &props_len);
	if (rc == ST_ERR_NEED_MORE)
		return ST_ERR_LENGTH;
	if (rc < 0)
		return rc;
	i += (size_t)rc;
	if (props_len > len - i)
		return ST_ERR_LENGTH;
	if (props_len > 0 && buf[4] != ST_MQTT_5)
		return ST_ERR_PROTOCOL;
	out->props = (struct st_bytes){buf + i, props_len};
	rc = check_props(out->props);
	if (rc != ST_OK)
		return rc;
	i += props_len;
	if (len - i < CLUSTER_ENV_TAIL)
		return ST_ERR_LENGTH;
	out->epoch = (uint32_t)get_be(buf + i, 4);
	out->lane = (uint32_t)get_be(buf + i + 4, 4);
	out->seq = get_be(buf + i + 8, 8);
	out->expiry_s = (uint32_t)get_be(buf + i + 16, 4);
	i += CLUSTER_ENV_TAIL;
	out->qos = flags & FLAG_QOS_MASK;
	out->retain = (flags & FLAG_RETAIN) != 0;
	out->level = buf[4];
	/* A payload of 4 GiB or more cannot arrive: NATS's max_payload is an int32. */
	out->payload = (struct st_bytes){buf + i, (uint32_t)(len - i)};
	return ST_OK;
}
