/*
 * Sessions across nodes: the bucket's name and keys, and the three messages nodes exchange
 * about a session (session.h).
 */
#include "session.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "envelope.h"
#include "retained.h"

#define SESS_MAGIC 0xC0

long cluster_sessions_bucket(const char *name, size_t len, char *buf, size_t cap)
{
	/* retained.h's escaping under another prefix: as valid and as injective. */
	char tmp[CLUSTER_BUCKET_MAX];
	long n = cluster_retained_bucket(name, len, tmp, sizeof(tmp));

	if (n < 0 || (size_t)n + 1 > cap)
		return -1;
	memcpy(buf, "sessions-", 9);
	memcpy(buf + 9, tmp + 9, (size_t)n - 9 + 1);
	return n;
}

static bool sess_plain(const uint8_t *id, size_t len)
{
	if (len == 0 || len > CLUSTER_SESS_PLAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

long cluster_session_key(const uint8_t *id, size_t len, char *buf, size_t cap)
{
	if (sess_plain(id, len)) {
		if (cap < len + 3)
			return -1;
		memcpy(buf, "c_", 2);
		memcpy(buf + 2, id, len);
		buf[len + 2] = '\0';
		return (long)len + 2;
	}
	XXH128_hash_t h = XXH3_128bits(id, len);

	if (cap < 2 + 32 + 1)
		return -1;
	snprintf(buf, cap, "h_%016llx%016llx", (unsigned long long)h.high64,
	         (unsigned long long)h.low64);
	return 34;
}

long cluster_session_subject(const char *prefix, size_t prefix_len, const uint8_t *node,
                             size_t node_len, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = prefix_len + 4 + 2 * node_len;

	if (node_len == 0 || node_len > CLUSTER_NODE_ID_MAX || n + 1 > cap)
		return -1;
	memcpy(buf, prefix, prefix_len);
	memcpy(buf + prefix_len, "s.t.", 4);
	for (size_t i = 0; i < node_len; i++) {
		buf[prefix_len + 4 + 2 * i] = hex[node[i] >> 4];
		buf[prefix_len + 4 + 2 * i + 1] = hex[node[i] & 15];
	}
	buf[n] = '\0';
	return (long)n;
}

static long sess_node_head(uint8_t kind, const uint8_t *node, size_t len, uint8_t *buf, size_t cap)
{
	if (!cluster_node_id_is_valid(node, len))
		return ST_ERR_PROTOCOL;
	if (cap < 4 + len)
		return ST_ERR_NO_SPACE;
	buf[0] = SESS_MAGIC;
	buf[1] = kind;
	buf[2] = 1;
	buf[3] = (uint8_t)len;
	memcpy(buf + 4, node, len);
	return (long)(4 + len);
}

long cluster_sess_entry_head(const uint8_t *node, size_t len, uint8_t *buf, size_t cap)
{
	return sess_node_head('O', node, len, buf, cap);
}

long cluster_sess_request_head(const uint8_t *node, size_t len, uint8_t *buf, size_t cap)
{
	return sess_node_head('T', node, len, buf, cap);
}

long cluster_sess_answer_head(uint8_t status, uint32_t dropped, uint8_t *buf, size_t cap)
{
	if (status > CLUSTER_SESS_ELSEWHERE)
		return ST_ERR_PROTOCOL;
	if (cap < CLUSTER_SESS_ANSWER_HEAD)
		return ST_ERR_NO_SPACE;
	buf[0] = SESS_MAGIC;
	buf[1] = 'A';
	buf[2] = 1;
	buf[3] = status;
	buf[4] = (uint8_t)(dropped >> 24);
	buf[5] = (uint8_t)(dropped >> 16);
	buf[6] = (uint8_t)(dropped >> 8);
	buf[7] = (uint8_t)dropped;
	return CLUSTER_SESS_ANSWER_HEAD;
}

/* A head with a node id: the node and what follows it. */
static int sess_node_decode(uint8_t kind, const uint8_t *buf, size_t len, struct st_bytes *node,
                            struct st_bytes *rest)
{
	size_t n;

	if (len < 4)
		return ST_ERR_LENGTH;
	if (buf[0] != SESS_MAGIC || buf[1] != kind || buf[2] != 1)
		return ST_ERR_PROTOCOL;
	n = buf[3];
	if (len < 4 + n)
		return ST_ERR_LENGTH;
	if (!cluster_node_id_is_valid(buf + 4, n))
		return ST_ERR_PROTOCOL;
	*node = (struct st_bytes){buf + 4, (uint32_t)n};
	*rest = (struct st_bytes){buf + 4 + n, (uint32_t)(len - 4 - n)};
	return ST_OK;
}

int cluster_sess_entry_decode(const uint8_t *buf, size_t len, struct cluster_sess_entry *out)
{
	return sess_node_decode('O', buf, len, &out->node, &out->records);
}

int cluster_sess_request_decode(const uint8_t *buf, size_t len, struct cluster_sess_request *out)
{
	int r = sess_node_decode('T', buf, len, &out->node, &out->client);

	if (r == ST_OK && out->client.len > 65535)
		return ST_ERR_PROTOCOL;
	return r;
}

int cluster_sess_answer_decode(const uint8_t *buf, size_t len, struct cluster_sess_answer *out)
{
	if (len < CLUSTER_SESS_ANSWER_HEAD)
		return ST_ERR_LENGTH;
	if (buf[0] != SESS_MAGIC || buf[1] != 'A' || buf[2] != 1 || buf[3] > CLUSTER_SESS_ELSEWHERE)
		return ST_ERR_PROTOCOL;
	out->status = buf[3];
	out->dropped =
	        (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];
	out->records = (struct st_bytes){buf + CLUSTER_SESS_ANSWER_HEAD,
	                                 (uint32_t)(len - CLUSTER_SESS_ANSWER_HEAD)};
	if (out->status == CLUSTER_SESS_NONE && out->records.len)
		return ST_ERR_PROTOCOL;
	if (out->status == CLUSTER_SESS_ELSEWHERE &&
	    !cluster_node_id_is_valid(out->records.ptr, out->records.len))
		return ST_ERR_PROTOCOL;
	return ST_OK;
}
