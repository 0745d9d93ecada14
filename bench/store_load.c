/*
 * Start-up cost of a large persistence directory (issue 10's figure): writes a log of
 * `retained` retain-sets (256 B payloads) and `sessions` sessions with `subs` subscriptions
 * each, then times, in this order: store_dir_recover (read every file with read(2), check
 * every record), replaying the chain into a store_state (what compaction and resharding
 * hold), store_dir_compact of the whole chain, and a recovery that reshards 1 worker into 4.
 * Figures are printed, never asserted; the page cache is warm (the files were just written).
 *
 *   build/bench/store_load [DIR] [retained] [sessions] [subs]
 *   (DIR defaults to a new /tmp/st-store-load-XXXXXX, removed at the end)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/dir.h"
#include "store/segment.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of the process: less noisy than wall time on a shared machine. */
static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static long maxrss_mib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024;
}

static unsigned home4(unsigned n, const uint8_t *client, size_t len)
{
	unsigned h = 7;

	for (size_t i = 0; i < len; i++)
		h = h * 31 + client[i];
	return h % n;
}

static void die(const char *what, int e, const char *err)
{
	fprintf(stderr, "store_load: %s: %d (%s) %s\n", what, e,
	        e < 0 && e >= STORE_E__MIN ? store_strerror(e) : strerror(-e), err ? err : "");
	exit(1);
}

static void flush_to(int fd, struct store_buf *b)
{
	size_t off = 0;

	while (off < b->len) {
		ssize_t n = write(fd, b->data + off, b->len - off);

		if (n <= 0)
			die("write", -errno, NULL);
		off += (size_t)n;
	}
	b->len = 0;
}

/* Writes NAME.0.0000000000000001: a base of the whole state, for 1 worker. */
static uint64_t write_log(const char *dir, unsigned long retained, unsigned long sessions,
                          unsigned subs)
{
	struct store_header h = {.flags = STORE_FLAG_BASE, .worker = 0, .workers = 1, .segment = 1};
	struct store_buf b = {0};
	uint8_t payload[256];
	char path[4096], topic[64], client[32], filter[64];
	uint64_t bytes = 0;
	int fd;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	snprintf(path, sizeof(path), "%s/starling.log.0.0000000000000001", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die(path, -errno, NULL);
	store_header_encode(&b, &h);
	for (unsigned long i = 0; i < sessions; i++) {
		struct store_rec r = {
		        .type = STORE_REC_SESSION_PUT, .protocol = 5, .expiry_interval_s = 3600};

		snprintf(client, sizeof(client), "client-%08lu", i);
		r.client = (struct st_bytes){.ptr = (const uint8_t *)client, .len = strlen(client)};
		store_rec_encode(&b, &r);
		r.type = STORE_REC_SUB_ADD;
		r.options = 1;
		for (unsigned k = 0; k < subs; k++) {
			snprintf(filter, sizeof(filter), "devices/%lu/cmd/%u/+", i, k);
			r.filter = (struct st_bytes){.ptr = (const uint8_t *)filter,
			                             .len = strlen(filter)};
			store_rec_encode(&b, &r);
		}
		if (b.len > (1u << 20)) {
			bytes += b.len;
			flush_to(fd, &b);
		}
	}
	for (unsigned long i = 0; i < retained; i++) {
		struct store_rec r = {.type = STORE_REC_RETAIN_SET, .qos = 1};

		snprintf(topic, sizeof(topic), "sensors/building-%lu/floor/%lu/value", i / 1000,
		         i % 1000);
		r.topic = (struct st_bytes){.ptr = (const uint8_t *)topic, .len = strlen(topic)};
		r.payload = (struct st_bytes){.ptr = payload, .len = sizeof(payload)};
		store_rec_encode(&b, &r);
		if (b.len > (1u << 20)) {
			bytes += b.len;
			flush_to(fd, &b);
		}
	}
	bytes += b.len;
	flush_to(fd, &b);
	if (fsync(fd) != 0)
		die("fsync", -errno, NULL);
	close(fd);
	store_buf_free(&b);
	return bytes;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[4096];

	while (d && (de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/st-store-load-XXXXXX", err[512] = "";
	const char *dir = argc > 1 ? argv[1] : NULL;
	unsigned long retained = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000000;
	unsigned long sessions = argc > 3 ? strtoul(argv[3], NULL, 10) : 100000;
	unsigned subs = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 10;
	struct store_compact_stats cs;
	struct store_chain chains[4];
	struct store_state *st;
	struct store_dir d;
	uint64_t bytes, records = 0;
	double t0, t1, c0;
	int e;

	if (!dir) {
		dir = mkdtemp(tmpl);
		if (!dir)
			die("mkdtemp", -errno, NULL);
	} else if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		die(dir, -errno, NULL);
	}
	t0 = now_s();
	bytes = write_log(dir, retained, sessions, subs);
	t1 = now_s();
	printf("log: %lu retained (256 B payload), %lu sessions x %u subscriptions: %.1f MB, "
	       "written in %.2f s\n",
	       retained, sessions, subs, (double)bytes / 1e6, t1 - t0);

	t0 = now_s();
	c0 = cpu_s();
	e = store_dir_open(&d, dir, "starling.log", 1, err, sizeof(err));
	if (e == 0)
		e = store_dir_recover(&d, home4, NULL, chains, err, sizeof(err));
	t1 = now_s();
	if (e)
		die("recover", e, err);
	printf("store_dir_recover (read + check every record): %.3f s (%.3f s CPU), %.0f MB/s, "
	       "max RSS %ld MiB\n",
	       t1 - t0, cpu_s() - c0, (double)bytes / 1e6 / (t1 - t0), maxrss_mib());

	t0 = now_s();
	c0 = cpu_s();
	st = store_state_new();
	for (unsigned i = 0; i < chains[0].nsegs; i++) {
		struct store_seg seg;
		struct store_rec r;

		store_seg_open(&seg, chains[0].segs[i].data, chains[0].segs[i].len, 1);
		while (store_seg_next(&seg, &r) > 0) {
			if (store_state_apply(st, &r) != 0)
				die("apply", -ENOMEM, NULL);
			records++;
		}
	}
	t1 = now_s();
	printf("replay into store_state: %.3f s (%.3f s CPU; %llu records, %.2f M records/s; %llu "
	       "sessions, %llu retained), max RSS %ld MiB\n",
	       t1 - t0, cpu_s() - c0, (unsigned long long)records,
	       (double)records / 1e6 / (t1 - t0), (unsigned long long)store_state_sessions(st),
	       (unsigned long long)store_state_retained(st), maxrss_mib());
	store_state_free(st);
	store_chains_free(chains, 1);

	t0 = now_s();
	c0 = cpu_s();
	e = store_dir_compact(&d, 0, 1, 1, &cs, err, sizeof(err));
	t1 = now_s();
	if (e)
		die("compact", e, err);
	printf("store_dir_compact (read, state, write + fsync the base): %.3f s (%.3f s CPU), %llu "
	       "records in, %llu out\n",
	       t1 - t0, cpu_s() - c0, (unsigned long long)cs.records_in,
	       (unsigned long long)cs.records_out);
	store_dir_close(&d);

	t0 = now_s();
	c0 = cpu_s();
	e = store_dir_open(&d, dir, "starling.log", 4, err, sizeof(err));
	if (e == 0)
		e = store_dir_recover(&d, home4, NULL, chains, err, sizeof(err));
	t1 = now_s();
	if (e)
		die("reshard", e, err);
	printf("store_dir_recover resharding 1 -> 4 workers: %.3f s (%.3f s CPU), max RSS %ld "
	       "MiB\n",
	       t1 - t0, cpu_s() - c0, maxrss_mib());
	store_chains_free(chains, 4);
	store_dir_close(&d);
	if (argc <= 1)
		remove_dir(dir);
	return 0;
}
