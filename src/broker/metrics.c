/*
 * The figures of GET /metrics: every worker's snapshot (metrics.h says how they are read),
 * summed where the metric is broker-wide, labelled worker="N" where it is per worker, written
 * with the http layer's exposition writer. Runs on the worker serving the scrape, once per
 * scrape; it walks the workers, never connections or sessions.
 *
 * Names follow Prometheus' conventions: a `starling_` prefix, counters ending in `_total`,
 * units spelled out (`_bytes`, `_seconds`). README.md lists them with their meaning.
 */
#include "metrics.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "cluster.h"
#include "http/metrics_text.h"
#include "index/retain.h"
#include "sys.h"
#include "worker.h"

/* The snapshots a scrape reads: one per worker. */
struct metrics_view {
	const struct worker_snapshot *snap; /* n entries */
	unsigned n;                         /* workers */
};

/* A snapshot field by its offset in struct worker_snapshot. */
static uint64_t metrics_field(const struct worker_snapshot *sn, size_t off)
{
	return atomic_load_explicit(
	        (const _Atomic uint64_t *)(const void *)((const char *)sn + off),
	        memory_order_relaxed);
}

static uint64_t metrics_sum(const struct metrics_view *v, size_t off)
{
	uint64_t sum = 0;

	for (unsigned k = 0; k < v->n; k++)
		sum += metrics_field(&v->snap[k], off);
	return sum;
}

#define OFF(field) offsetof(struct worker_snapshot, field)

/* A broker-wide metric: the sum of one snapshot field over the workers. */
struct metrics_simple {
	const char *name;
	const char *type;
	const char *help;
	size_t off;
};

static const struct metrics_simple metrics_totals[] = {
        {"starling_connections", "gauge",
         "MQTT connections open (counted against max_connections, CONNECT or not).", OFF(clients)},
        {"starling_sessions", "gauge", "Sessions held, online or not.", OFF(sessions)},
        {"starling_subscriptions", "gauge", "Subscriptions (shared ones once per member).",
         OFF(subscriptions)},
        {"starling_queued_messages", "gauge",
         "QoS 1/2 deliveries waiting in sessions' queues (offline, window full, output full).",
         OFF(queued)},
        {"starling_output_memory_bytes", "gauge",
         "Memory held by output to clients (buffers, payloads kept alive).", OFF(output_memory)},
        {"starling_received_bytes_total", "counter",
         "Bytes read from MQTT client sockets (TLS: ciphertext).", OFF(bytes_received)},
        {"starling_sent_bytes_total", "counter",
         "Bytes written to MQTT client sockets (TLS: ciphertext).", OFF(bytes_sent)},
        {"starling_packets_received_total", "counter", "MQTT packets of any type received.",
         OFF(packets_received)},
        {"starling_packets_sent_total", "counter", "MQTT packets of any type queued to clients.",
         OFF(packets_sent)},
        {"starling_protocol_errors_total", "counter",
         "Connections closed for malformed or illegal packets.", OFF(protocol_errors)},
        {"starling_tls_handshakes_total", "counter", "TLS handshakes completed.",
         OFF(tls_handshakes)},
        {"starling_tls_handshake_failures_total", "counter",
         "TLS connections refused during the handshake (not TLS, bad or revoked certificate, "
         "unknown CA, timeout).",
         OFF(tls_handshake_failures)},
        {"starling_metrics_requests_total", "counter",
         "HTTP requests answered by the metrics listeners (any status).", OFF(http_requests)},
};

static const struct metrics_simple metrics_persist[] = {
        {"starling_persistence_commits_total", "counter",
         "Persistence commits written (and synced with persistence_sync always).",
         OFF(persist_commits)},
        {"starling_persistence_syncs_total", "counter", "fdatasync calls completed.",
         OFF(persist_syncs)},
        {"starling_persistence_records_total", "counter", "Records appended to the logs.",
         OFF(persist_records)},
        {"starling_persistence_written_bytes_total", "counter", "Bytes appended to the logs.",
         OFF(persist_bytes)},
        {"starling_persistence_refused_total", "counter",
         "QoS 1/2 publishes refused because the log could not take them.", OFF(persist_refused)},
        {"starling_persistence_errors_total", "counter",
         "Log writes or syncs that failed (each retried).", OFF(persist_errors)},
        {"starling_persistence_compactions_total", "counter", "Log compactions completed.",
         OFF(persist_compactions)},
};

/* Per-worker loop figures, labelled worker="N". */
static const struct metrics_simple metrics_workers[] = {
        {"starling_worker_connections", "gauge", "MQTT connections open on the worker.",
         OFF(clients)},
        {"starling_worker_loop_iterations_total", "counter",
         "Loop iterations that handled at least one completion.", OFF(loop_iterations)},
        {"starling_worker_completions_total", "counter", "io_uring completions handled.",
         OFF(cqes)},
        {"starling_worker_sends_total", "counter", "Send operations completed.", OFF(sends)},
        {"starling_worker_received_bytes_total", "counter", "Bytes read from MQTT client sockets.",
         OFF(bytes_received)},
        {"starling_worker_recv_enobufs_total", "counter",
         "Receives stopped for lack of provided buffers (-ENOBUFS; back-pressure, re-armed).",
         OFF(enobufs)},
};

static void metrics_simple_family(struct mtext *t, const struct metrics_view *v,
                                  const struct metrics_simple *m)
{
	mtext_family(t, m->name, m->type, m->help);
	mtext_sample(t, m->name, NULL, 0, metrics_sum(v, m->off));
}

/* "127.0.0.1:1883", "[::1]:1883", "*:1883": a configured listener, its port resolved. */
static void metrics_listener_name(const struct broker *b, unsigned cfg, char *buf, size_t cap)
{
	const char *addr = b->cfg.listeners[cfg].bind;
	unsigned port = b->cfg.listeners[cfg].port;

	for (unsigned i = 0; i < b->nlisten; i++)
		if (!b->listen_metrics[i] && b->listen_cfg[i] == cfg) {
			port = b->listen_ports[i];
			break;
		}
	snprintf(buf, cap, "%s%s%s:%u", strchr(addr, ':') ? "[" : "", addr[0] ? addr : "*",
	         strchr(addr, ':') ? "]" : "", port);
}

static void metrics_connections(struct mtext *t, const struct broker *b,
                                const struct metrics_view *v)
{
	static const char name[] = "starling_connections_accepted_total";
	char label[300];

	mtext_family(t, name, "counter",
	             "MQTT connections accepted, by listener (before max_connections is checked).");
	for (unsigned i = 0; i < b->cfg.listener_count && i < CONFIG_LISTENERS_MAX; i++) {
		struct mtext_label l = {"listener", label};

		metrics_listener_name(b, i, label, sizeof(label));
		mtext_sample(t, name, &l, 1, metrics_sum(v, OFF(accepted[i])));
	}
}

/* Counters by QoS: the three fields at off, off + 8, off + 16. */
static void metrics_by_qos(struct mtext *t, const struct metrics_view *v, const char *name,
                           const char *help, size_t off)
{
	static const char *const qos[] = {"0", "1", "2"};

	mtext_family(t, name, "counter", help);
	for (unsigned q = 0; q < 3; q++) {
		struct mtext_label l = {"qos", qos[q]};

		mtext_sample(t, name, &l, 1, metrics_sum(v, off + q * sizeof(uint64_t)));
	}
}

static void metrics_publish(struct mtext *t, const struct metrics_view *v)
{
	metrics_by_qos(t, v, "starling_publish_received_total",
	               "PUBLISH packets received from clients, by their QoS.", OFF(pub_in));
	metrics_by_qos(t, v, "starling_publish_received_payload_bytes_total",
	               "Payload bytes of the PUBLISH packets received, by their QoS.",
	               OFF(pub_in_bytes));
	metrics_by_qos(t, v, "starling_publish_sent_total",
	               "PUBLISH packets queued to clients, by the QoS they are sent at.",
	               OFF(pub_out));
	metrics_by_qos(t, v, "starling_publish_sent_payload_bytes_total",
	               "Payload bytes of the PUBLISH packets queued to clients, by QoS.",
	               OFF(pub_out_bytes));
}

static void metrics_drops(struct mtext *t, const struct metrics_view *v)
{
	static const char name[] = "starling_dropped_messages_total";
	static const struct {
		const char *cause;
		size_t off;
	} causes[] = {
	        {"output_full", OFF(output_dropped)},   {"queue_full", OFF(queue_dropped)},
	        {"channel_full", OFF(channel_dropped)}, {"expired", OFF(expired_dropped)},
	        {"too_large", OFF(too_large_dropped)},  {"other", OFF(other_dropped)},
	};

	mtext_family(t, name, "counter",
	             "Deliveries not made, by cause: output_full (QoS 0, a client not keeping up, "
	             "max_output_bytes/max_output_memory), queue_full (QoS 1/2, "
	             "max_queued_messages), channel_full (QoS 0, a full queue to another worker), "
	             "expired (MQTT 5 message expiry), too_large (a client's Maximum Packet Size), "
	             "other (out of memory, no shared subscriber left).");
	for (unsigned i = 0; i < sizeof(causes) / sizeof(causes[0]); i++) {
		struct mtext_label l = {"cause", causes[i].cause};

		mtext_sample(t, name, &l, 1, metrics_sum(v, causes[i].off));
	}
}

static void metrics_loop_histogram(struct mtext *t, const struct metrics_view *v)
{
	static const char name[] = "starling_worker_loop_seconds";
	static const uint64_t bounds_ns[METRICS_LOOP_BUCKETS] = METRICS_LOOP_BOUNDS_NS;
	double bounds[METRICS_LOOP_BUCKETS];

	for (unsigned i = 0; i < METRICS_LOOP_BUCKETS; i++)
		bounds[i] = (double)bounds_ns[i] / 1e9;
	mtext_family(t, name, "histogram",
	             "Time of each loop iteration, from the end of the wait for completions to the "
	             "start of the next wait (handlers, housekeeping, sends).");
	for (unsigned k = 0; k < v->n; k++) {
		uint64_t counts[METRICS_LOOP_BUCKETS + 1];
		char num[12];
		struct mtext_label l = {"worker", num};

		snprintf(num, sizeof(num), "%u", k);
		for (unsigned i = 0; i <= METRICS_LOOP_BUCKETS; i++)
			counts[i] = metrics_field(&v->snap[k], OFF(loop_counts[i]));
		mtext_histogram(t, name, &l, 1, bounds, counts, METRICS_LOOP_BUCKETS,
		                (double)metrics_field(&v->snap[k], OFF(loop_sum_ns)) / 1e9);
	}
}

static void metrics_per_worker(struct mtext *t, const struct metrics_view *v)
{
	for (unsigned i = 0; i < sizeof(metrics_workers) / sizeof(metrics_workers[0]); i++) {
		const struct metrics_simple *m = &metrics_workers[i];

		mtext_family(t, m->name, m->type, m->help);
		for (unsigned k = 0; k < v->n; k++) {
			char num[12];
			struct mtext_label l = {"worker", num};

			snprintf(num, sizeof(num), "%u", k);
			mtext_sample(t, m->name, &l, 1, metrics_field(&v->snap[k], m->off));
		}
	}
	/* PUBLISH packets per send is this over starling_worker_sends_total. */
	mtext_family(
	        t, "starling_worker_publish_sent_total", "counter",
	        "PUBLISH packets queued to clients by the worker (over its sends: messages per "
	        "send).");
	for (unsigned k = 0; k < v->n; k++) {
		char num[12];
		struct mtext_label l = {"worker", num};
		uint64_t sum = 0;

		snprintf(num, sizeof(num), "%u", k);
		for (unsigned q = 0; q < 3; q++)
			sum += metrics_field(&v->snap[k], OFF(pub_out[q]));
		mtext_sample(t, "starling_worker_publish_sent_total", &l, 1, sum);
	}
	metrics_loop_histogram(t, v);
}

static void metrics_info(struct mtext *t, const struct worker *w)
{
	struct mtext_label l = {"version", STARLING_VERSION};

	mtext_family(t, "starling_build_info", "gauge", "Always 1; the version as a label.");
	mtext_sample(t, "starling_build_info", &l, 1, 1);
	mtext_family(t, "starling_start_time_seconds", "gauge",
	             "When the broker started, in seconds since the epoch.");
	mtext_sample(t, "starling_start_time_seconds", NULL, 0, w->b->start_s);
	mtext_family(t, "starling_workers", "gauge", "Worker threads.");
	mtext_sample(t, "starling_workers", NULL, 0, w->nworkers);
	/* Every worker holds the whole retained store: the serving worker's replica. */
	mtext_family(t, "starling_retained_messages", "gauge", "Retained messages stored.");
	mtext_sample(t, "starling_retained_messages", NULL, 0,
	             retain_count(w->retained) - w->tombs_stored);
}

/* Bridges (bridge.h): one series per `connection` block, labelled with its name. */
static void metrics_bridges(struct mtext *t, const struct broker *b)
{
	static const struct {
		const char *name, *type, *help;
		size_t off;
	} fams[] = {
	        {"starling_bridge_connected", "gauge", "1 while the bridge is connected.",
	         offsetof(struct bridge_snapshot, connected)},
	        {"starling_bridge_queued_messages", "gauge",
	         "Messages waiting for the bridge's remote.",
	         offsetof(struct bridge_snapshot, queued)},
	        {"starling_bridge_dropped_messages_total", "counter",
	         "Messages for the remote dropped (QoS 0 while it is away, a full queue).",
	         offsetof(struct bridge_snapshot, dropped)},
	        {"starling_bridge_connects_total", "counter", "Connections the remote accepted.",
	         offsetof(struct bridge_snapshot, connects)},
	        {"starling_bridge_connect_failures_total", "counter",
	         "Attempts that failed: connect, TLS, CONNACK refused, connection lost early.",
	         offsetof(struct bridge_snapshot, failures)},
	};
	static const char msgs[] = "starling_bridge_messages_total";

	for (unsigned f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		mtext_family(t, fams[f].name, fams[f].type, fams[f].help);
		for (unsigned i = 0; i < b->cfg.bridge_count; i++) {
			struct mtext_label l = {"bridge", b->cfg.bridges[i].name};
			const _Atomic uint64_t *p =
			        (const _Atomic uint64_t *)(const void *)((const char *)&b->shared
			                                                         .bridge_snap[i] +
			                                                 fams[f].off);

			mtext_sample(t, fams[f].name, &l, 1,
			             atomic_load_explicit(p, memory_order_relaxed));
		}
	}
	mtext_family(t, msgs, "counter",
	             "PUBLISH packets through the bridge: out to the remote, in from it.");
	for (unsigned i = 0; i < b->cfg.bridge_count; i++) {
		const struct bridge_snapshot *s = &b->shared.bridge_snap[i];
		struct mtext_label out[2] = {{"bridge", b->cfg.bridges[i].name},
		                             {"direction", "out"}};
		struct mtext_label in[2] = {{"bridge", b->cfg.bridges[i].name},
		                            {"direction", "in"}};

		mtext_sample(t, msgs, out, 2,
		             atomic_load_explicit(&s->msgs_out, memory_order_relaxed));
		mtext_sample(t, msgs, in, 2,
		             atomic_load_explicit(&s->msgs_in, memory_order_relaxed));
	}
}

/* The cluster through NATS (cluster.h), when there is one. */
static void metrics_cluster_of(struct mtext *t, const struct cluster_figures f)
{
	static const char dropped[] = "starling_cluster_messages_dropped_total";
	const struct {
		const char *name, *type, *help;
		uint64_t v;
	} fams[] = {
	        {"starling_cluster_connected", "gauge", "1 while the NATS connection is up.",
	         f.connected},
	        {"starling_cluster_subscriptions", "gauge",
	         "NATS subscriptions held for this node's filters.", f.subscriptions},
	        {"starling_cluster_messages_sent_total", "counter",
	         "Messages published on NATS for other nodes.", f.sent},
	        {"starling_cluster_messages_received_total", "counter",
	         "Messages from other nodes routed here.", f.received},
	        {"starling_cluster_duplicates_total", "counter",
	         "Second copies of a message (overlapping filters) dropped.", f.duplicates},
	        {"starling_cluster_invalid_total", "counter",
	         "Messages on the cluster's subjects refused: not from a node of this cluster.",
	         f.invalid},
	        {"starling_cluster_too_long_total", "counter",
	         "Topics and filters kept on this node: their NATS subject would be too long.",
	         f.too_long},
	        {"starling_cluster_retained_stored_total", "counter",
	         "Retained writes of this node the cluster's bucket acknowledged.",
	         f.retained_stored},
	        {"starling_cluster_retained_failed_total", "counter",
	         "Retained writes of this node lost on the way to the bucket (refused, not "
	         "acknowledged, not sent).",
	         f.retained_failed},
	        {"starling_cluster_retained_received_total", "counter",
	         "Entries of the cluster's retained bucket applied to this node's store.",
	         f.retained_received},
	        {"starling_cluster_retained_invalid_total", "counter",
	         "Entries of the cluster's retained bucket refused: not a retained message.",
	         f.retained_invalid},
	        {"starling_cluster_sessions_received_total", "counter",
	         "Persistent sessions another node handed over to this one.", f.sessions_received},
	        {"starling_cluster_sessions_sent_total", "counter",
	         "Persistent sessions this node handed over to another.", f.sessions_sent},
	        {"starling_cluster_sessions_from_bucket_total", "counter",
	         "Persistent sessions started from the sessions' bucket: their owner did not "
	         "answer.",
	         f.sessions_from_bucket},
	        {"starling_cluster_sessions_messages_dropped_total", "counter",
	         "Queued messages a session's hand-over could not carry.",
	         f.sessions_messages_dropped},
	        {"starling_cluster_sessions_failed_total", "counter",
	         "Calls to the sessions' bucket that failed (NATS down, no JetStream).",
	         f.sessions_failed},
	};

	for (unsigned i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
		mtext_family(t, fams[i].name, fams[i].type, fams[i].help);
		mtext_sample(t, fams[i].name, NULL, 0, fams[i].v);
	}
	mtext_family(t, dropped, "counter",
	             "Messages lost between nodes: out (not published: backlog, NATS refused it), "
	             "in (a worker's queue full, a slow consumer).");
	mtext_sample(t, dropped, &(struct mtext_label){"direction", "out"}, 1, f.dropped_out);
	mtext_sample(t, dropped, &(struct mtext_label){"direction", "in"}, 1, f.dropped_in);
}

static void metrics_cluster(struct mtext *t, const struct broker *b)
{
	struct cluster_figures f;

	if (cluster_figures(b, &f))
		metrics_cluster_of(t, f);
}

void metrics_render(struct worker *w, struct mtext *t)
{
	struct worker_snapshot own;
	struct metrics_view v = {.snap = &own, .n = 1};

	if (w->nworkers > 1) {
		/* Its own figures as fresh as the scrape; the others' as of their last pass. */
		worker_snapshot(w);
		v = (struct metrics_view){.snap = w->b->shared.snap, .n = w->nworkers};
	} else {
		memset(&own, 0, sizeof(own));
		worker_snapshot_fill(w, &own);
	}
	metrics_info(t, w);
	for (unsigned i = 0; i < sizeof(metrics_totals) / sizeof(metrics_totals[0]); i++)
		metrics_simple_family(t, &v, &metrics_totals[i]);
	metrics_connections(t, w->b, &v);
	metrics_publish(t, &v);
	metrics_drops(t, &v);
	if (w->ps)
		for (unsigned i = 0; i < sizeof(metrics_persist) / sizeof(metrics_persist[0]); i++)
			metrics_simple_family(t, &v, &metrics_persist[i]);
	metrics_per_worker(t, &v);
	if (w->b->cfg.bridge_count)
		metrics_bridges(t, w->b);
	metrics_cluster(t, w->b);
}
