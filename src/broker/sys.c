/*
 * $SYS publication. The values are the worker's counters; formatting and routing happen once
 * per interval, never on the message path.
 */
#include "sys.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "cluster.h"
#include "index/retain.h"
#include "persist.h"
#include "route.h"
#include "index/subidx.h"
#include "worker.h"

enum sys_kind { SYS_COUNT, SYS_SECONDS };

struct sys_topic {
	const char *topic;
	enum sys_kind kind;
};

static const struct sys_topic sys_topics[] = {
        {"$SYS/broker/uptime", SYS_SECONDS},
        {"$SYS/broker/clients/connected", SYS_COUNT},
        {"$SYS/broker/clients/total", SYS_COUNT},
        {"$SYS/broker/clients/disconnected", SYS_COUNT},
        {"$SYS/broker/clients/maximum", SYS_COUNT},
        {"$SYS/broker/messages/received", SYS_COUNT},
        {"$SYS/broker/messages/sent", SYS_COUNT},
        {"$SYS/broker/publish/messages/received", SYS_COUNT},
        {"$SYS/broker/publish/messages/sent", SYS_COUNT},
        {"$SYS/broker/publish/messages/dropped", SYS_COUNT},
        {"$SYS/broker/bytes/received", SYS_COUNT},
        {"$SYS/broker/bytes/sent", SYS_COUNT},
        {"$SYS/broker/subscriptions/count", SYS_COUNT},
        {"$SYS/broker/retained messages/count", SYS_COUNT},
        {"$SYS/broker/connections/total", SYS_COUNT},
        {"$SYS/broker/protocol/errors", SYS_COUNT},
        /* Starling's own: output queued to clients, and QoS 0 dropped for slow readers. */
        {"$SYS/broker/output/memory", SYS_COUNT},
        {"$SYS/broker/output/dropped", SYS_COUNT},
        /* QoS 1/2 deliveries a session's full queue (max_queued_messages) could not take. */
        {"$SYS/broker/queue/dropped", SYS_COUNT},
        /* TLS listeners: handshakes completed, and connections refused during the handshake
         * (not TLS, a bad certificate, an unknown CA, revoked, expired, garbage). */
        {"$SYS/broker/tls/handshakes", SYS_COUNT},
        {"$SYS/broker/tls/handshake_failures", SYS_COUNT},
        /* persistence on: commits written and synced (fdatasync with persistence_sync
         * always), records and bytes appended to the logs, QoS 1/2 publishes refused because
         * the log could not take them (disk full, I/O error). */
        {"$SYS/broker/persistence/commits", SYS_COUNT},
        {"$SYS/broker/persistence/records", SYS_COUNT},
        {"$SYS/broker/persistence/bytes", SYS_COUNT},
        {"$SYS/broker/persistence/refused", SYS_COUNT},
        /* A cluster through NATS (cluster.h): 1 while connected, the NATS subscriptions held
         * for this node's filters, messages published on NATS and received from it, those
         * lost either way, second copies dropped (overlapping filters), messages refused (not
         * of this cluster), topics and filters kept on this node (too long for NATS). */
        {"$SYS/broker/cluster/connected", SYS_COUNT},
        {"$SYS/broker/cluster/subscriptions", SYS_COUNT},
        {"$SYS/broker/cluster/messages/sent", SYS_COUNT},
        {"$SYS/broker/cluster/messages/received", SYS_COUNT},
        {"$SYS/broker/cluster/messages/dropped", SYS_COUNT},
        {"$SYS/broker/cluster/messages/duplicates", SYS_COUNT},
        {"$SYS/broker/cluster/messages/invalid", SYS_COUNT},
        {"$SYS/broker/cluster/messages/too_long", SYS_COUNT},
        /* The retained messages' bucket: writes it acknowledged, writes lost (refused, not
         * answered, not sent), its entries applied here, its entries refused. */
        {"$SYS/broker/cluster/retained/stored", SYS_COUNT},
        {"$SYS/broker/cluster/retained/failed", SYS_COUNT},
        {"$SYS/broker/cluster/retained/received", SYS_COUNT},
        {"$SYS/broker/cluster/retained/invalid", SYS_COUNT},
        /* Persistent sessions: handed over to this node, by it to another, started from the
         * sessions' bucket because their owner did not answer, queued messages a hand-over
         * could not carry, bucket calls that failed. */
        {"$SYS/broker/cluster/sessions/received", SYS_COUNT},
        {"$SYS/broker/cluster/sessions/sent", SYS_COUNT},
        {"$SYS/broker/cluster/sessions/from_bucket", SYS_COUNT},
        {"$SYS/broker/cluster/sessions/messages_dropped", SYS_COUNT},
        {"$SYS/broker/cluster/sessions/failed", SYS_COUNT},
};

_Static_assert(sizeof(sys_topics) / sizeof(sys_topics[0]) <= SYS_TOPICS_MAX, "SYS_TOPICS_MAX");

/* The sum over workers of one snapshot field (each worker refreshes its own). */
#define SYS_SUM(b, field)                                                                          \
	({                                                                                         \
		uint64_t sum_ = 0;                                                                 \
		for (unsigned k_ = 0; k_ < (b)->nworkers; k_++)                                    \
			sum_ += atomic_load_explicit(&(b)->shared.snap[k_].field,                  \
			                             memory_order_relaxed);                        \
		sum_;                                                                              \
	})

static void sys_cluster_values(const struct broker *b, uint64_t *v)
{
	struct cluster_figures f = {0};

	cluster_figures(b, &f);
	v[0] = f.connected;
	v[1] = f.subscriptions;
	v[2] = f.sent;
	v[3] = f.received;
	v[4] = f.dropped;
	v[5] = f.duplicates;
	v[6] = f.invalid;
	v[7] = f.too_long;
	v[8] = f.retained_stored;
	v[9] = f.retained_failed;
	v[10] = f.retained_received;
	v[11] = f.retained_invalid;
	v[12] = f.sessions_received;
	v[13] = f.sessions_sent;
	v[14] = f.sessions_from_bucket;
	v[15] = f.sessions_messages_dropped;
	v[16] = f.sessions_failed;
}

/* With several workers, worker 0 publishes the sums of every worker's last snapshot. */
static void sys_values_all(struct worker *w, uint64_t *v)
{
	struct broker *b = w->b;
	uint64_t online = SYS_SUM(b, clients), total = SYS_SUM(b, sessions);
	unsigned i = 0;

	if (online > w->stats.clients_max)
		w->stats.clients_max = online;
	v[i++] = (uint64_t)time(NULL) - b->start_s;
	v[i++] = online;
	v[i++] = total;
	v[i++] = total > online ? total - online : 0;
	v[i++] = w->stats.clients_max;
	v[i++] = SYS_SUM(b, packets_received);
	v[i++] = SYS_SUM(b, packets_sent);
	v[i++] = SYS_SUM(b, msgs_received);
	v[i++] = SYS_SUM(b, msgs_sent);
	v[i++] = SYS_SUM(b, msgs_dropped);
	v[i++] = SYS_SUM(b, bytes_received);
	v[i++] = SYS_SUM(b, bytes_sent);
	v[i++] = SYS_SUM(b, subscriptions);
	/* Every worker holds the whole retained store: one replica's count, tombstones aside. */
	v[i++] = retain_count(w->retained) - w->tombs_stored;
	v[i++] = SYS_SUM(b, connections_total);
	v[i++] = SYS_SUM(b, protocol_errors);
	v[i++] = SYS_SUM(b, output_memory);
	v[i++] = SYS_SUM(b, output_dropped);
	v[i++] = SYS_SUM(b, queue_dropped);
	v[i++] = SYS_SUM(b, tls_handshakes);
	v[i++] = SYS_SUM(b, tls_handshake_failures);
	v[i++] = SYS_SUM(b, persist_commits);
	v[i++] = SYS_SUM(b, persist_records);
	v[i++] = SYS_SUM(b, persist_bytes);
	v[i++] = SYS_SUM(b, persist_refused);
	sys_cluster_values(b, v + i);
}

static void sys_values(struct worker *w, uint64_t *v)
{
	uint64_t online = w->nclients, total = w->sessions.count;
	unsigned i = 0;

	if (w->nworkers > 1) {
		sys_values_all(w, v);
		return;
	}
	if (online > w->stats.clients_max)
		w->stats.clients_max = online;
	v[i++] = (uint64_t)time(NULL) - w->b->start_s;
	v[i++] = online;
	v[i++] = total;
	v[i++] = total > online ? total - online : 0;
	v[i++] = w->stats.clients_max;
	v[i++] = w->stats.packets_received;
	v[i++] = w->stats.packets_sent;
	v[i++] = w->stats.msgs_received;
	v[i++] = w->stats.msgs_sent;
	v[i++] = w->stats.msgs_dropped;
	v[i++] = w->stats.bytes_received;
	v[i++] = w->stats.bytes_sent;
	v[i++] = subidx_count(w->subs);
	v[i++] = retain_count(w->retained) - w->tombs_stored; /* a cluster keeps tombstones */
	v[i++] = w->stats.connections_total;
	v[i++] = w->stats.protocol_errors;
	v[i++] = w->output_memory;
	v[i++] = w->stats.output_dropped;
	v[i++] = w->stats.queue_dropped;
	v[i++] = w->stats.tls_handshakes;
	v[i++] = w->stats.tls_handshake_failures;
	v[i++] = w->ps ? w->ps->stats.commits : 0;
	v[i++] = w->ps ? w->ps->stats.records : 0;
	v[i++] = w->ps ? w->ps->stats.bytes : 0;
	v[i++] = w->ps ? w->ps->stats.refused : 0;
	sys_cluster_values(w->b, v + i);
}

static void sys_publish(struct worker *w, const char *topic, const char *payload)
{
	struct pub_view v = {
	        .topic = {(const uint8_t *)topic, (uint32_t)strlen(topic)},
	        .payload = {(const uint8_t *)payload, (uint32_t)strlen(payload)},
	};

	route_publish(w, NULL, &v, 0, true);
}

void sys_tick(struct worker *w)
{
	struct sys_state *st = &w->sys;
	uint64_t v[SYS_TOPICS_MAX];
	char buf[64];

	if (w->b->cfg.sys_interval_s == 0 || w->now_ms < st->next_ms || w->index != 0)
		return;
	if (st->next_ms == 0)
		sys_publish(w, "$SYS/broker/version", "starling version " STARLING_VERSION);
	st->next_ms = w->now_ms + (uint64_t)w->b->cfg.sys_interval_s * 1000;
	sys_values(w, v);
	for (unsigned i = 0; i < sizeof(sys_topics) / sizeof(sys_topics[0]); i++) {
		if (st->published[i] && st->last[i] == v[i])
			continue;
		if (!w->ps && strncmp(sys_topics[i].topic, "$SYS/broker/persistence/", 24) == 0)
			continue;
		if (!w->cl && strncmp(sys_topics[i].topic, "$SYS/broker/cluster/", 20) == 0)
			continue;
		st->published[i] = 1;
		st->last[i] = v[i];
		if (sys_topics[i].kind == SYS_SECONDS)
			snprintf(buf, sizeof(buf), "%" PRIu64 " seconds", v[i]);
		else
			snprintf(buf, sizeof(buf), "%" PRIu64, v[i]);
		sys_publish(w, sys_topics[i].topic, buf);
	}
}
