/*
 * The fan-out micro-benchmark's set-up (see fanout_shim.h). Connections are real struct conn
 * with fd -1: route_publish, out_publish and obuf_iov run exactly as in the broker; only the
 * sendmsg submission is left out, and each send is then treated as complete (for QoS 1 the
 * subscriber's PUBACK is applied too, so the window never fills).
 */
#include "fanout_shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/out.h"
#include "index/retain.h"
#include "broker/route.h"
#include "broker/session.h"
#include "broker/subdata.h"
#include "index/subidx.h"
#include "broker/worker.h"

struct fanout_bench {
	struct broker b;        /* configuration the worker reads */
	struct worker w;        /* the worker, without a ring */
	struct conn **conns;    /* subscribers' connections */
	struct session **sess;  /* their sessions */
	unsigned n;             /* subscribers */
	uint8_t qos;            /* publish QoS */
	uint8_t *payload;       /* payload bytes */
	size_t payload_len;     /* bytes */
	struct iovec iov[1024]; /* send being built */
};

static const uint8_t topic[] = "plant/line7/sensor/temperature";

struct fanout_bench *fanout_bench_new(unsigned subscribers, uint8_t qos, uint8_t level,
                                      size_t payload)
{
	struct fanout_bench *fb = calloc(1, sizeof(*fb));

	if (!fb)
		return NULL;
	config_defaults(&fb->b.cfg);
	fb->b.inflight_max = 20;
	fb->b.max_packet = UINT32_MAX;
	fb->w.b = &fb->b;
	fb->w.subs = subidx_new();
	fb->w.retained = retain_new();
	fb->w.idbuf_cap = ROUTE_IDS_MAX;
	fb->w.output_max = UINT64_MAX; /* no broker-wide output bound here */
	fb->n = subscribers;
	fb->qos = qos;
	fb->payload_len = payload;
	fb->payload = calloc(1, payload ? payload : 1);
	fb->conns = calloc(subscribers, sizeof(*fb->conns));
	fb->sess = calloc(subscribers, sizeof(*fb->sess));
	for (unsigned i = 0; i < subscribers; i++) {
		char id[32];
		struct conn *c = calloc(1, sizeof(*c));
		struct session *s;

		snprintf(id, sizeof(id), "sub-%u", i);
		s = session_new((const uint8_t *)id, strlen(id), 20, 1000);
		c->w = &fb->w;
		c->fd = -1;
		c->state = CONN_ACTIVE;
		c->level = level;
		if (level >= ST_MQTT_5)
			c->v5 = calloc(1, sizeof(*c->v5));
		c->session = s;
		s->conn = c;
		subidx_add(fb->w.subs, topic, sizeof(topic) - 1, s, subdata_make(qos, 0));
		fb->conns[i] = c;
		fb->sess[i] = s;
	}
	return fb;
}

unsigned fanout_bench_run(struct fanout_bench *fb)
{
	struct worker *w = &fb->w;
	struct pub_view v = {
	        .topic = {topic, sizeof(topic) - 1},
	        .payload = {fb->payload, (uint32_t)fb->payload_len},
	};
	unsigned sent = 0;

	route_publish(w, NULL, &v, fb->qos, false);
	/* The end of the batch: every connection's send built, then completed. */
	while (w->flush_list) {
		struct conn *c = w->flush_list;

		w->flush_list = c->flush_next;
		c->on_flush_list = false;
		sent += obuf_iov(&c->out, 0, fb->iov, 1024) > 0;
		obuf_reset(&c->out);
		/* The subscriber acknowledges what it received (at most the window). */
		for (uint32_t pid = 1; fb->qos && pid <= c->session->slots_cap; pid++)
			if (c->session->slots[pid - 1].state == SLOT_WAIT_PUBACK)
				session_out_puback(c->session, (uint16_t)pid);
	}
	return sent;
}

void fanout_bench_free(struct fanout_bench *fb)
{
	for (unsigned i = 0; i < fb->n; i++) {
		struct conn *c = fb->conns[i];

		subidx_remove(fb->w.subs, topic, sizeof(topic) - 1, fb->sess[i]);
		session_free(fb->sess[i]);
		obuf_release(&c->out);
		free(c->v5);
		free(c);
	}
	subidx_free(fb->w.subs);
	retain_free(fb->w.retained, NULL, NULL);
	free(fb->w.matches);
	free(fb->w.shared);
	free(fb->w.ids);
	free(fb->conns);
	free(fb->sess);
	free(fb->payload);
	free(fb);
}
