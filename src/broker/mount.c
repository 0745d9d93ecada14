/*
 * mount_point: prefixing inbound topics and filters (mount.h says where and at what cost).
 */
#include "mount.h"

#include <stdlib.h>

#include "broker.h"
#include "conn.h"
#include "share.h"
#include "starling/error.h"
#include "worker.h"

int mount_name(const uint8_t *mount, uint16_t mount_len, struct st_bytes name, uint8_t *buf,
               size_t cap, struct st_bytes *out)
{
	size_t len = (size_t)mount_len + name.len;

	if (len > MOUNT_TOPIC_MAX || len > cap)
		return ST_ERR_TOPIC;
	memcpy(buf, mount, mount_len);
	memcpy(buf + mount_len, name.ptr, name.len);
	*out = (struct st_bytes){buf, (uint32_t)len};
	return ST_OK;
}

int mount_filter(const uint8_t *mount, uint16_t mount_len, struct st_bytes filter, uint8_t *buf,
                 size_t cap, struct st_bytes *out)
{
	struct st_bytes inner;
	size_t head = 0, len = (size_t)mount_len + filter.len;
	int shared = share_parse(filter.ptr, filter.len, &inner);

	if (shared < 0) {
		*out = filter;
		return ST_OK;
	}
	if (shared == 1)
		head = (size_t)(inner.ptr - filter.ptr);
	if (len > MOUNT_TOPIC_MAX || len > cap)
		return ST_ERR_FILTER;
	memcpy(buf, filter.ptr, head);
	memcpy(buf + head, mount, mount_len);
	memcpy(buf + head + mount_len, filter.ptr + head, filter.len - head);
	*out = (struct st_bytes){buf, (uint32_t)len};
	return ST_OK;
}

void mount_attach(struct conn *c)
{
	const struct config_listener *l = &c->w->b->cfg.listeners[c->listener];

	c->mount = (const uint8_t *)l->opts.mount_point;
	c->mount_len = (uint16_t)strlen(l->opts.mount_point);
}

/* The worker's mount buffer: room for any prefix and any topic, allocated at first use. */
static uint8_t *mount_buf(struct worker *w)
{
	if (!w->mount_buf)
		w->mount_buf = malloc(CONFIG_MOUNT_POINT_MAX + MOUNT_TOPIC_MAX);
	return w->mount_buf;
}

int mount_conn_name(struct conn *c, struct st_bytes *topic)
{
	uint8_t *buf = mount_buf(c->w);

	if (!buf)
		return ST_ERR_NOMEM;
	return mount_name(c->mount, c->mount_len, *topic, buf,
	                  CONFIG_MOUNT_POINT_MAX + MOUNT_TOPIC_MAX, topic);
}

int mount_conn_filter(struct conn *c, struct st_bytes *filter)
{
	uint8_t *buf = mount_buf(c->w);

	if (!buf)
		return ST_ERR_NOMEM;
	return mount_filter(c->mount, c->mount_len, *filter, buf,
	                    CONFIG_MOUNT_POINT_MAX + MOUNT_TOPIC_MAX, filter);
}
