/*
 * starling-bench: the load generator bundled with Starling (see bench/README.md). main() parses
 * the options, builds the plan, shares the connections out over --threads threads (client i to
 * thread i mod N), arms a last-resort alarm at the run's global deadline, starts the threads,
 * runs thread 0 (the leader) itself, joins the others and prints the report. Each thread sets
 * up its own ring (SINGLE_ISSUER binds a ring to the thread that creates it); a barrier holds
 * every loop until all rings exist, and another holds every ring until all loops are over, so
 * that no thread's doorbell can reach a ring already gone. Exit status 0: the run completed
 * (loss is reported, not a failure); 1: it failed, reason on stderr; 2: usage.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "procstat.h"
#include "selftest.h"

/*
 * SIGALRM at the global deadline: the loop's own deadlines should end every run long before,
 * so this only fires on a bug. Only async-signal-safe calls here.
 */
static void on_alarm(int sig)
{
	static const char msg[] =
	        "starling-bench: error: global deadline passed; aborting the run\n"
	        "{\"ok\":false,\"error\":\"global deadline passed\"}\n";
	(void)sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

static void arm_deadline(const struct bench_opts *o)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	alarm((unsigned)(bench_opts_budget_ms(o) / 1000u) + 5u);
}

/* Publisher i's connection is client subs + i, on thread (subs + i) mod N. */
static int init_publishers(struct bench_shared *sh)
{
	const struct bench_plan *plan = &sh->plan;
	size_t bytes = (plan->pubs ? plan->pubs : 1) * sizeof(*sh->pubs);
	sh->pubs = aligned_alloc(alignof(struct bench_pub), bytes);
	if (sh->pubs == NULL)
		return -1;
	memset(sh->pubs, 0, bytes);
	for (uint32_t t = 0; t < sh->nthreads; t++)
		sh->threads[t]->pubs = sh->pubs;
	for (uint32_t i = 0; i < plan->pubs; i++) {
		struct bench_pub *pub = &sh->pubs[i];
		uint32_t g = plan->subs + i;
		pub->plan_index = i;
		pub->pub_id = plan->pub[i].pub_id;
		pub->thread = g % sh->nthreads;
		pub->pid_next = 1;
		pub->inflight_max = sh->o->inflight_max;
		atomic_init(&pub->head, 0);
		atomic_init(&pub->blocked, false);
		if (sh->o->qos > 0 && (pub->pid_state = calloc(65536, 1)) == NULL)
			return -1;
		struct bench *b = sh->threads[pub->thread];
		b->conns[g / sh->nthreads].pub = pub;
		b->pub_conns[b->npubs++] = g / sh->nthreads;
	}
	return 0;
}

/* Thread t's share of the clients: indexes t, t + N, t + 2N, ... */
static int init_thread_conns(struct bench_shared *sh, struct bench *b)
{
	const struct bench_plan *plan = &sh->plan;
	uint32_t n = sh->nthreads;
	b->nconns = sh->nconns > b->id ? (sh->nconns - b->id + n - 1) / n : 0;
	b->flow_shared = n > 1;
	b->conns = calloc(b->nconns ? b->nconns : 1, sizeof(*b->conns));
	b->pub_conns = calloc(b->nconns ? b->nconns : 1, sizeof(*b->pub_conns));
	b->ooo_per_pub = calloc(plan->pub_ids ? plan->pub_ids : 1, sizeof(uint64_t));
	if (b->conns == NULL || b->pub_conns == NULL || b->ooo_per_pub == NULL)
		return -1;
	for (uint32_t k = 0; k < b->nconns; k++) {
		struct bench_conn *c = &b->conns[k];
		uint32_t i = b->id + k * n;
		c->fd = -1;
		c->index = i;
		c->local = k;
		c->role = i < plan->subs                ? BENCH_ROLE_SUB
		          : i < plan->subs + plan->pubs ? BENCH_ROLE_PUB
		                                        : BENCH_ROLE_IDLE;
		if (c->role == BENCH_ROLE_SUB &&
		    (c->seq = calloc(plan->pub_ids ? plan->pub_ids : 1, sizeof(*c->seq))) == NULL)
			return -1;
	}
	return 0;
}

static int init_conns(struct bench_shared *sh)
{
	const struct bench_plan *plan = &sh->plan;
	sh->nconns = plan->subs + plan->pubs + plan->idle;
	/* At most one thread per client: a thread with nothing to do would only slow the rest. */
	if (sh->nthreads > sh->nconns && sh->nconns > 0)
		sh->nthreads = sh->nconns;
	sh->tmpl = calloc(plan->topic_count ? plan->topic_count : 1, sizeof(*sh->tmpl));
	sh->ring_fds = calloc(sh->nthreads, sizeof(*sh->ring_fds));
	if (sh->tmpl == NULL || sh->ring_fds == NULL)
		return -1;
	for (uint32_t t = 0; t < sh->nthreads; t++)
		if (init_thread_conns(sh, sh->threads[t]) != 0)
			return -1;
	if (init_publishers(sh) != 0 || bench_flow_init(sh) != 0 ||
	    bench_mqtt_build_templates(sh) != 0)
		return -1;
	return 0;
}

/* The shared state and every thread's struct, before the plan: bench_fail needs them. */
static struct bench_shared *alloc_run(const struct bench_opts *o)
{
	struct bench_shared *sh = calloc(1, sizeof(*sh));
	if (sh == NULL || (sh->threads = calloc(o->threads, sizeof(*sh->threads))) == NULL)
		return NULL;
	sh->o = o;
	sh->nthreads = o->threads;
	sh->max_packet = o->payload_bytes + 65536u;
	for (uint32_t t = 0; t < o->threads; t++) {
		/* 64-byte aligned for its pulse; 36 KiB of histogram: not on the stack. */
		struct bench *b = aligned_alloc(alignof(struct bench), sizeof(*b));
		if (b == NULL)
			return NULL;
		memset(b, 0, sizeof(*b));
		b->sh = sh;
		b->o = o;
		b->plan = &sh->plan;
		b->id = t;
		b->granted_qos_min = o->qos;
		b->server_keepalive_s = o->keepalive_s;
		b->win_start_ns = UINT64_MAX;
		b->win_end_ns = UINT64_MAX;
		bench_hist_init(&b->hist);
		sh->threads[t] = b;
	}
	return sh;
}

/* One thread: its ring, then its loop, then (once every loop is over) its ring's end. */
static void *thread_main(void *arg)
{
	struct bench *b = arg;
	char err[256];
	if (bench_loop_init(b, err, sizeof(err)) != 0)
		bench_fail(b, "%s", err);
	b->sh->ring_fds[b->id] = b->ring.ring_fd;
	pthread_barrier_wait(&b->sh->barrier);
	bench_run(b);
	pthread_barrier_wait(&b->sh->barrier);
	bench_loop_exit(b);
	return NULL;
}

/* Runs threads 1..N-1 on their own, thread 0 here; returns when all are done. */
static void run_threads(struct bench_shared *sh)
{
	pthread_t *tids = calloc(sh->nthreads, sizeof(*tids));
	if (tids == NULL || pthread_barrier_init(&sh->barrier, NULL, sh->nthreads) != 0)
		bench_fail(sh->threads[0], "out of memory for %u threads", sh->nthreads);
	bench_phase_start(sh, bench_now_ns());
	for (uint32_t t = 1; t < sh->nthreads; t++) {
		int rc = pthread_create(&tids[t], NULL, thread_main, sh->threads[t]);
		if (rc != 0)
			bench_fail(sh->threads[0], "pthread_create: %s", strerror(rc));
	}
	thread_main(sh->threads[0]);
	for (uint32_t t = 1; t < sh->nthreads; t++)
		pthread_join(tids[t], NULL);
	pthread_barrier_destroy(&sh->barrier);
	free(tids);
}

/* Releases everything a completed run holds (the sanitizers check that nothing leaks). */
static void bench_free(struct bench_shared *sh)
{
	for (uint32_t t = 0; t < sh->o->threads; t++) {
		struct bench *b = sh->threads[t];
		for (uint32_t i = 0; b->conns != NULL && i < b->nconns; i++) {
			struct bench_conn *c = &b->conns[i];
			if (c->fd >= 0)
				close(c->fd);
			free(c->out[0].data);
			free(c->out[1].data);
			free(c->carry);
			free(c->seq);
			bench_tls_free(c);
			bench_ws_free(c);
		}
		free(b->tls_buf);
		free(b->ws_buf);
		free(b->conns);
		free(b->pub_conns);
		free(b->ooo_per_pub);
		free(b);
	}
	for (uint32_t i = 0; sh->pubs != NULL && i < sh->plan.pubs; i++) {
		free(sh->pubs[i].pid_state);
		free(sh->pubs[i].flow.slots);
		free(sh->pubs[i].flow.sent_ns);
	}
	for (uint32_t t = 0; sh->tmpl != NULL && t < sh->plan.topic_count; t++)
		free(sh->tmpl[t].bytes);
	free(sh->pubs);
	free(sh->tmpl);
	bench_tls_fini(sh);
	free(sh->ring_fds);
	free(sh->threads);
	bench_plan_free(&sh->plan);
	free(sh);
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	char err[256];
	char prefix[32];

	if (argc == 2 && strcmp(argv[1], "selftest") == 0)
		return bench_selftest();
	int rc = bench_opts_parse(&o, argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (o.id_prefix == NULL) {
		snprintf(prefix, sizeof(prefix), "sb%ld", (long)getpid());
		o.id_prefix = prefix;
	}
	struct bench_shared *sh = alloc_run(&o);
	if (sh == NULL) {
		fprintf(stderr, "starling-bench: error: out of memory\n");
		return 1;
	}
	struct bench *lead = sh->threads[0];
	arm_deadline(&o);
	if (o.broker_pid != 0) {
		uint64_t v;
		if ((rc = bench_proc_cpu_ns(o.broker_pid, &v)) != 0)
			bench_fail(lead, "--broker-pid %ld: %s", (long)o.broker_pid, strerror(-rc));
	}
	if (bench_plan_build(&sh->plan, &o, err, sizeof(err)) != 0)
		bench_fail(lead, "planning the run: %s", err);
	if (init_conns(sh) != 0)
		bench_fail(lead, "out of memory for %u connections", sh->nconns);
	if (bench_loop_prepare(sh, err, sizeof(err)) != 0 ||
	    bench_tls_prepare(sh, err, sizeof(err)) != 0)
		bench_fail(lead, "%s", err);
	/* --persistent: nothing inherited from an earlier run with the same ids (session.c). */
	if (o.persistent && bench_sessions_clean(sh, err, sizeof(err)) != 0)
		bench_fail(lead, "before the run: %s", err);
	run_threads(sh);
	/* ... and nothing left behind for the next one, or the broker's next start. */
	if (o.persistent && bench_sessions_clean(sh, err, sizeof(err)) != 0)
		bench_fail(lead, "after the run: %s", err);
	rc = bench_report(sh) == 0 ? 0 : 1;
	bench_free(sh);
	return rc;
}
