/*
 * starling-bench: the load generator bundled with Starling (see bench/README.md). main() parses
 * the options, builds the plan, sets up the ring and the connections, arms a last-resort alarm
 * at the run's global deadline, runs the phases and prints the report. Exit status 0: the run
 * completed (loss is reported, not a failure); 1: it failed, reason on stderr; 2: usage.
 */
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

static int init_publishers(struct bench *b)
{
	const struct bench_opts *o = b->o;
	b->pubs = calloc(b->plan.pubs ? b->plan.pubs : 1, sizeof(*b->pubs));
	if (b->pubs == NULL)
		return -1;
	for (uint32_t i = 0; i < b->plan.pubs; i++) {
		struct bench_pub *pub = &b->pubs[i];
		pub->plan_index = i;
		pub->pub_id = b->plan.pub[i].pub_id;
		pub->pid_next = 1;
		pub->inflight_max = o->inflight_max;
		if (o->qos > 0 && (pub->pid_state = calloc(65536, 1)) == NULL)
			return -1;
		b->conns[b->plan.subs + i].pub = pub;
	}
	return 0;
}

static int init_conns(struct bench *b)
{
	b->nconns = b->plan.subs + b->plan.pubs + b->plan.idle;
	b->conns = calloc(b->nconns ? b->nconns : 1, sizeof(*b->conns));
	b->ooo_per_pub = calloc(b->plan.pub_ids ? b->plan.pub_ids : 1, sizeof(uint64_t));
	b->tmpl = calloc(b->plan.topic_count ? b->plan.topic_count : 1, sizeof(*b->tmpl));
	if (b->conns == NULL || b->ooo_per_pub == NULL || b->tmpl == NULL)
		return -1;
	for (uint32_t i = 0; i < b->nconns; i++) {
		struct bench_conn *c = &b->conns[i];
		c->fd = -1;
		c->index = i;
		c->role = i < b->plan.subs                  ? BENCH_ROLE_SUB
		          : i < b->plan.subs + b->plan.pubs ? BENCH_ROLE_PUB
		                                            : BENCH_ROLE_IDLE;
		if (c->role == BENCH_ROLE_SUB &&
		    (c->seq = calloc(b->plan.pub_ids ? b->plan.pub_ids : 1, sizeof(*c->seq))) ==
		            NULL)
			return -1;
	}
	if (init_publishers(b) != 0 || bench_flow_init(b) != 0 ||
	    bench_mqtt_build_templates(b) != 0)
		return -1;
	return 0;
}

/* Releases everything a completed run holds (the sanitizers check that nothing leaks). */
static void bench_free(struct bench *b)
{
	/* The ring first: nothing pending may refer to memory freed below. */
	bench_loop_exit(b);
	for (uint32_t i = 0; b->conns != NULL && i < b->nconns; i++) {
		struct bench_conn *c = &b->conns[i];
		if (c->fd >= 0)
			close(c->fd);
		free(c->out[0].data);
		free(c->out[1].data);
		free(c->carry);
		free(c->seq);
	}
	for (uint32_t i = 0; b->pubs != NULL && i < b->plan.pubs; i++) {
		free(b->pubs[i].pid_state);
		free(b->pubs[i].flow.left);
		free(b->pubs[i].flow.sent_ns);
	}
	for (uint32_t t = 0; b->tmpl != NULL && t < b->plan.topic_count; t++)
		free(b->tmpl[t].bytes);
	free(b->conns);
	free(b->pubs);
	free(b->tmpl);
	free(b->ooo_per_pub);
	bench_plan_free(&b->plan);
	free(b);
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
	struct bench *b = calloc(1, sizeof(*b)); /* 35 KiB of histogram: not on the stack */
	if (b == NULL)
		return 1;
	b->o = &o;
	b->granted_qos_min = o.qos;
	b->server_keepalive_s = o.keepalive_s;
	b->max_packet = o.payload_bytes + 65536u;
	bench_hist_init(&b->hist);
	arm_deadline(&o);
	if (o.broker_pid != 0) {
		uint64_t v;
		if ((rc = bench_proc_cpu_ns(o.broker_pid, &v)) != 0)
			bench_fail(b, "--broker-pid %ld: %s", (long)o.broker_pid, strerror(-rc));
	}
	if (bench_plan_build(&b->plan, &o, err, sizeof(err)) != 0)
		bench_fail(b, "planning the run: %s", err);
	if (init_conns(b) != 0)
		bench_fail(b, "out of memory for %u connections", b->nconns);
	if (bench_loop_init(b, err, sizeof(err)) != 0)
		bench_fail(b, "%s", err);
	bench_run(b);
	rc = bench_report(b) == 0 ? 0 : 1;
	bench_free(b);
	return rc;
}
