/*
 * Message allocation: one allocation per promoted message, sized exactly (struct + topic +
 * properties + payload), from the worker's jemalloc arena through malloc.
 */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(struct msg) == 48, "a message header grows only with reason");

struct msg *msg_new(struct st_bytes topic, struct st_bytes props, struct st_bytes payload,
                    uint8_t qos, bool retain)
{
	struct msg *m;

	assert(topic.len <= UINT16_MAX);
	m = malloc(sizeof(*m) + (size_t)topic.len + props.len + payload.len);
	if (!m)
		return NULL;
	atomic_init(&m->refs, 1);
	m->qos = qos;
	m->retain = retain;
	m->topic_len = (uint16_t)topic.len;
	m->props_len = props.len;
	m->payload_len = payload.len;
	m->expiry_ms = 0;
	m->rseq = 0;
	m->origin = 0;
	m->osrc = 0;
	m->src = NULL;
	if (topic.len)
		memcpy(m->data, topic.ptr, topic.len);
	if (props.len)
		memcpy(m->data + topic.len, props.ptr, props.len);
	if (payload.len)
		memcpy(m->data + topic.len + props.len, payload.ptr, payload.len);
	return m;
}

void msg_free(struct msg *m)
{
	free(m->src);
	free(m);
}
