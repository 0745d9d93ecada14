/*
 * starling-bench's output (bench.h): a human summary line, then one JSON line that scripts
 * parse (bench/compare.sh), both on stdout; with --json only the JSON line. Rates are per
 * second of the measurement window, latencies in microseconds. The threads' counters,
 * latency histograms and out-of-order tallies are added up first (after the threads are
 * joined), so a run reads the same whatever --threads was; only a run with more than one
 * thread says how many. A failed run prints its reason on stderr and a JSON line with
 * "ok":false, so a script always has a line to read.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* A bounded text builder; output past the end is dropped, never overflowing. */
struct text {
	char buf[4096]; /* the text */
	size_t len;     /* bytes used, < sizeof(buf) */
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += (size_t)n < sizeof(t->buf) - t->len ? (size_t)n
		                                              : sizeof(t->buf) - t->len - 1;
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void put_json_str(struct text *t, const char *s)
{
	put(t, "\"");
	for (; s != NULL && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			put(t, "\\%c", ch);
		else if (ch < 0x20)
			put(t, "\\u%04x", ch);
		else
			put(t, "%c", ch);
	}
	put(t, "\"");
}

static const char *level_name(uint8_t level)
{
	return level == 5 ? "5" : "3.1.1";
}

/* "1.23M", "456.7k", "89" */
static void put_si(struct text *t, double v)
{
	if (v >= 1e6)
		put(t, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		put(t, "%.1fk", v / 1e3);
	else
		put(t, "%.0f", v);
}

/* The threads' figures added up. */
struct totals {
	struct bench_counters n; /* every counter, summed */
	uint64_t sub_min;        /* fewest window deliveries to one subscriber */
	uint64_t sub_max;        /* most window deliveries to one subscriber */
	struct bench_hist hist;  /* every latency sample */
	uint32_t ooo_pubs;       /* publisher ids with an out-of-order delivery on any thread */
};

static void add_counters(struct bench_counters *d, const struct bench_counters *s)
{
#define ADD(field) d->field += s->field
	ADD(sent_total);
	ADD(sent_win);
	ADD(expected_win);
	ADD(delivered_total);
	ADD(delivered_win);
	ADD(delivered_ext_win);
	ADD(arrived_win);
	ADD(duplicates);
	ADD(out_of_order);
	ADD(invalid);
	ADD(acked);
	ADD(sends);
	ADD(send_bytes);
	ADD(recv_cqes);
	ADD(recv_bytes);
	ADD(nobufs);
	ADD(short_sends);
	ADD(presumed_lost);
	ADD(gap_lost);
#undef ADD
}

static void merge(const struct bench_shared *sh, struct totals *t)
{
	memset(&t->n, 0, sizeof(t->n));
	bench_hist_init(&t->hist);
	t->ooo_pubs = 0;
	for (uint32_t i = 0; i < sh->nthreads; i++) {
		add_counters(&t->n, &sh->threads[i]->n);
		bench_hist_merge(&t->hist, &sh->threads[i]->hist);
	}
	t->sub_min = UINT64_MAX;
	t->sub_max = 0;
	for (uint32_t i = 0; i < sh->nthreads; i++)
		for (uint32_t j = 0; j < sh->threads[i]->nconns; j++) {
			const struct bench_conn *c = &sh->threads[i]->conns[j];
			if (c->role != BENCH_ROLE_SUB)
				continue;
			if (c->delivered_win < t->sub_min)
				t->sub_min = c->delivered_win;
			if (c->delivered_win > t->sub_max)
				t->sub_max = c->delivered_win;
		}
	if (t->sub_min == UINT64_MAX)
		t->sub_min = 0;
	for (uint32_t id = 0; id < sh->plan.pub_ids; id++) {
		uint64_t ooo = 0;
		for (uint32_t i = 0; i < sh->nthreads; i++)
			ooo += sh->threads[i]->ooo_per_pub[id];
		t->ooo_pubs += ooo > 0;
	}
}

/* Figures derived from the counters, in the units printed. */
struct figures {
	double window_s;           /* measurement window */
	double sent_per_s;         /* publishes generated per second */
	double delivered_per_s;    /* deliveries arriving per second */
	int64_t loss;              /* expected - delivered (negative: more than expected) */
	double lat_us[5];          /* p50, p90, p99, p99.9, max */
	double broker_cpu_s;       /* broker CPU time in the window */
	double cpu_us_per_msg;     /* per delivered message (per sent one without subscribers) */
	double rss_per_conn_bytes; /* (RSS at the end - before connecting) / connections */
	double self_cpu_pct;       /* this process's CPU use in the window */
	double msgs_per_send;      /* PUBLISHes generated per send operation (acks' sends too) */
	double setup_s;            /* start to every connection set up (connected, subscribed) */
	double connects_per_s;     /* connections / setup_s */
	double setup_cpu_us;       /* broker CPU per connection set up (TLS: its handshake) */
};

static void compute(const struct bench_shared *sh, const struct totals *t, struct figures *f)
{
	static const double q[4] = {0.5, 0.9, 0.99, 0.999};
	const struct bench_counters *n = &t->n;
	memset(f, 0, sizeof(*f));
	if (sh->win_end_ns != UINT64_MAX && sh->win_end_ns > sh->win_start_ns)
		f->window_s = (double)(sh->win_end_ns - sh->win_start_ns) / 1e9;
	double w = f->window_s > 0 ? f->window_s : 1;
	f->sent_per_s = (double)n->sent_win / w;
	f->delivered_per_s = (double)n->arrived_win / w;
	f->loss = (int64_t)n->expected_win - (int64_t)n->delivered_win;
	for (int i = 0; i < 4; i++)
		f->lat_us[i] = (double)bench_hist_quantile_ns(&t->hist, q[i]) / 1e3;
	f->lat_us[4] = (double)t->hist.max_ns / 1e3;
	f->broker_cpu_s = (double)(sh->s.broker_cpu1_ns - sh->s.broker_cpu0_ns) / 1e9;
	if (sh->s.setup_done_ns > sh->t_start_ns) {
		f->setup_s = (double)(sh->s.setup_done_ns - sh->t_start_ns) / 1e9;
		f->connects_per_s = (double)sh->nconns / f->setup_s;
		if (sh->nconns > 0 && sh->s.broker_cpu_setup1_ns >= sh->s.broker_cpu_setup0_ns)
			f->setup_cpu_us =
			        (double)(sh->s.broker_cpu_setup1_ns - sh->s.broker_cpu_setup0_ns) /
			        1e3 / sh->nconns;
	}
	uint64_t msgs = n->arrived_win ? n->arrived_win : n->sent_win;
	if (msgs > 0)
		f->cpu_us_per_msg = f->broker_cpu_s * 1e6 / (double)msgs;
	if (sh->nconns > 0 && sh->s.broker_rss1_kb >= sh->s.broker_rss0_kb)
		f->rss_per_conn_bytes =
		        (double)(sh->s.broker_rss1_kb - sh->s.broker_rss0_kb) * 1024.0 / sh->nconns;
	/* All threads' CPU: with N threads this can reach N x 100%. */
	f->self_cpu_pct = (double)(sh->s.self_cpu1_ns - sh->s.self_cpu0_ns) / 1e7 / w;
	if (n->sends > 0)
		f->msgs_per_send = (double)n->sent_total / (double)n->sends;
}

static void human(const struct bench_shared *sh, const struct totals *tot, const struct figures *f)
{
	const struct bench_opts *o = sh->o;
	const struct bench_counters *n = &tot->n;
	struct text t = {.len = 0};
	put(&t, "%s qos%u %uB mqtt%s%s", bench_scenario_name(o->scenario), o->qos, o->payload_bytes,
	    level_name(o->level), o->persistent ? " persistent" : "");
	if (o->scenario == BENCH_CONNECTIONS) {
		put(&t, " N=%u: held %.1f s", sh->nconns, f->window_s);
	} else {
		put(&t, " P=%u S=%u subs=%u: sent ", sh->plan.pubs, sh->plan.subs,
		    sh->plan.filter_count);
		put_si(&t, f->sent_per_s);
		put(&t, "/s delivered ");
		put_si(&t, f->delivered_per_s);
		put(&t, "/s loss %lld dup %llu ooo %llu", (long long)f->loss,
		    (unsigned long long)n->duplicates, (unsigned long long)n->out_of_order);
		if (o->share != NULL)
			put(&t, " | share %s: %llu..%llu per member", o->share,
			    (unsigned long long)tot->sub_min, (unsigned long long)tot->sub_max);
		put(&t, " | latency us p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f",
		    f->lat_us[0], f->lat_us[1], f->lat_us[2], f->lat_us[3], f->lat_us[4]);
	}
	if (sh->s.broker_ok) {
		put(&t, " | broker %.3f us/msg cpu, rss %.1f MiB", f->cpu_us_per_msg,
		    (double)sh->s.broker_rss1_kb / 1024.0);
		if (o->scenario == BENCH_CONNECTIONS)
			put(&t,
			    ", %.0f B per connection; set up %.0f/s at %.1f us of broker CPU each",
			    f->rss_per_conn_bytes, f->connects_per_s, f->setup_cpu_us);
	}
	put(&t, " | bench cpu %.0f%%", f->self_cpu_pct);
	if (sh->nthreads > 1)
		put(&t, " over %u threads", sh->nthreads);
	if (n->invalid > 0)
		put(&t, " | %llu INVALID payloads", (unsigned long long)n->invalid);
	printf("%s\n", t.buf);
}

static void put_config(struct text *t, const struct bench_shared *sh)
{
	const struct bench_opts *o = sh->o;
	put(t, "\"scenario\":\"%s\",\"mqtt\":\"%s\",\"qos\":%u,\"payload\":%u,",
	    bench_scenario_name(o->scenario), level_name(o->level), o->qos, o->payload_bytes);
	put(t, "\"publishers\":%u,\"subscribers\":%u,\"connections\":%u,\"subscriptions\":%u,",
	    sh->plan.pubs, sh->plan.subs, sh->nconns, sh->plan.filter_count);
	put(t, "\"topics\":%u,\"ext_publishers\":%u,\"nodelay\":%s,", sh->plan.topic_count,
	    o->ext_publishers, o->nodelay ? "true" : "false");
	double rate = o->rate_total > 0 ? o->rate_total : o->rate_per_client * sh->plan.pubs;
	put(t, "\"rate_target\":%.0f,\"inflight\":%u,\"batch\":%u,", rate, o->inflight_max,
	    o->batch_bytes);
	/* Only when not the default, so that a one-thread line reads as it always has. */
	if (sh->nthreads > 1)
		put(t, "\"threads\":%u,", sh->nthreads);
	if (o->persistent)
		put(t, "\"persistent\":true,");
	if (o->share != NULL) {
		put(t, "\"share\":");
		put_json_str(t, o->share);
		put(t, ",");
	}
	if (o->label != NULL) {
		put(t, "\"label\":");
		put_json_str(t, o->label);
		put(t, ",");
	}
}

static void json(const struct bench_shared *sh, const struct totals *tot, const struct figures *f)
{
	const struct bench_counters *n = &tot->n;
	struct text t = {.len = 0};
	put(&t, "{\"ok\":%s,", n->invalid == 0 ? "true" : "false");
	put_config(&t, sh);
	put(&t, "\"duration_s\":%.3f,\"sent\":%llu,\"sent_per_s\":%.1f,", f->window_s,
	    (unsigned long long)n->sent_win, f->sent_per_s);
	put(&t, "\"expected\":%llu,\"delivered\":%llu,\"delivered_ext\":%llu,",
	    (unsigned long long)n->expected_win, (unsigned long long)n->delivered_win,
	    (unsigned long long)n->delivered_ext_win);
	put(&t, "\"delivered_per_s\":%.1f,\"fan\":%.4f,\"loss\":%lld,", f->delivered_per_s,
	    n->sent_win ? (double)n->expected_win / (double)n->sent_win : 0.0, (long long)f->loss);
	put(&t, "\"duplicates\":%llu,\"out_of_order\":%llu,\"ooo_publishers\":%u,",
	    (unsigned long long)n->duplicates, (unsigned long long)n->out_of_order, tot->ooo_pubs);
	put(&t, "\"per_subscriber_min\":%llu,\"per_subscriber_max\":%llu,",
	    (unsigned long long)tot->sub_min, (unsigned long long)tot->sub_max);
	put(&t, "\"invalid\":%llu,\"sent_total\":%llu,\"delivered_total\":%llu,\"acked\":%llu,",
	    (unsigned long long)n->invalid, (unsigned long long)n->sent_total,
	    (unsigned long long)n->delivered_total, (unsigned long long)n->acked);
	put(&t,
	    "\"latency_us\":{\"count\":%llu,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
	    "\"p999\":%.1f,\"max\":%.1f},",
	    (unsigned long long)tot->hist.total, f->lat_us[0], f->lat_us[1], f->lat_us[2],
	    f->lat_us[3], f->lat_us[4]);
	if (sh->s.broker_ok)
		put(&t,
		    "\"broker\":{\"pid\":%ld,\"cpu_s\":%.3f,\"cpu_us_per_msg\":%.4f,"
		    "\"rss_kb\":%llu,\"rss0_kb\":%llu,\"rss_per_conn_bytes\":%.1f,"
		    "\"setup_cpu_us_per_conn\":%.2f},",
		    (long)sh->o->broker_pid, f->broker_cpu_s, f->cpu_us_per_msg,
		    (unsigned long long)sh->s.broker_rss1_kb,
		    (unsigned long long)sh->s.broker_rss0_kb, f->rss_per_conn_bytes,
		    f->setup_cpu_us);
	put(&t, "\"setup_s\":%.3f,\"connects_per_s\":%.1f,", f->setup_s, f->connects_per_s);
	put(&t, "\"bench\":{\"cpu_pct\":%.1f,\"sends\":%llu,\"msgs_per_send\":%.1f,",
	    f->self_cpu_pct, (unsigned long long)n->sends, f->msgs_per_send);
	put(&t, "\"window\":%u,\"gap_lost\":%llu,\"presumed_lost\":%llu,\"short_sends\":%llu,",
	    sh->plan.pubs ? sh->pubs[0].flow.window : 0, (unsigned long long)n->gap_lost,
	    (unsigned long long)n->presumed_lost, (unsigned long long)n->short_sends);
	put(&t, "\"recv_cqes\":%llu,\"recv_bytes\":%llu,\"nobufs\":%llu}}",
	    (unsigned long long)n->recv_cqes, (unsigned long long)n->recv_bytes,
	    (unsigned long long)n->nobufs);
	printf("%s\n", t.buf);
}

int bench_report(const struct bench_shared *sh)
{
	struct figures f;
	struct totals *t = malloc(sizeof(*t)); /* 36 KiB of histogram: not on the stack */
	if (t == NULL) {
		fprintf(stderr, "starling-bench: error: out of memory for the report\n");
		return -1;
	}
	merge(sh, t);
	compute(sh, t, &f);
	if (!sh->o->json_only)
		human(sh, t, &f);
	json(sh, t, &f);
	fflush(stdout);
	uint64_t invalid = t->n.invalid;
	free(t);
	if (invalid > 0) {
		fprintf(stderr,
		        "starling-bench: error: %llu deliveries carried payloads not from "
		        "this run\n",
		        (unsigned long long)invalid);
		return -1;
	}
	return 0;
}

void bench_fail(const struct bench *b, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The first thread to fail speaks; another would only garble its line, so it waits. */
	if (atomic_exchange(&b->sh->failing, true))
		for (;;)
			pause();
	fflush(stdout);
	fprintf(stderr, "starling-bench: error: %s\n", msg);
	struct text t = {.len = 0};
	put(&t,
	    "{\"ok\":false,\"scenario\":\"%s\",\"error\":", bench_scenario_name(b->o->scenario));
	put_json_str(&t, msg);
	if (b->o->label != NULL) {
		put(&t, ",\"label\":");
		put_json_str(&t, b->o->label);
	}
	put(&t, "}");
	printf("%s\n", t.buf);
	fflush(stdout);
	fflush(stderr);
	/* A failed run ends here, mid-flight: the kernel reclaims sockets, ring and memory. */
	_exit(1);
}
