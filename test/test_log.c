/*
 * Unit tests of log.c: lines written to a temporary log file and read back (format, time
 * stamp, append mode), type filtering (defaults, log_type, -v), stderr and stdout through a
 * redirected descriptor, the topic callback, long messages, an unopenable file, and several
 * threads logging at once without a torn line.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "starling/error.h"
#include "testutil.h"

static char log_path[64];

/* A default config that logs to a new, empty temporary file (log_path). */
static void file_config(struct config *cfg)
{
	int fd;

	config_defaults(cfg);
	snprintf(log_path, sizeof(log_path), "/tmp/test_log.XXXXXX");
	fd = mkstemp(log_path);
	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	cfg->log_dest_count = 1;
	cfg->log_dests[0].kind = LOG_DEST_FILE;
	snprintf(cfg->log_dests[0].path, sizeof(cfg->log_dests[0].path), "%s", log_path);
}

/* The whole of a file, NUL-terminated, in a static buffer. */
static const char *slurp(const char *path)
{
	static char buf[1 << 20];
	FILE *f = fopen(path, "r");
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Checks "<t>: <msg>\n" with lo <= t <= hi; returns the byte after the line. */
static const char *check_line(const char *p, const char *msg, time_t lo, time_t hi)
{
	char *end;
	long long t = strtoll(p, &end, 10);

	CU_ASSERT(end != p);
	CU_ASSERT(t >= lo && t <= hi);
	CU_ASSERT_EQUAL(strncmp(end, ": ", 2), 0);
	CU_ASSERT_EQUAL(strncmp(end + 2, msg, strlen(msg)), 0);
	CU_ASSERT_EQUAL(end[2 + strlen(msg)], '\n');
	return end + 2 + strlen(msg) + 1;
}

static void test_file_format(void)
{
	struct config cfg;
	struct log lg;
	time_t lo, hi;
	const char *p;

	file_config(&cfg);
	CU_ASSERT_EQUAL_FATAL(log_open(&lg, &cfg), ST_OK);
	CU_ASSERT(lg.file_fd > STDERR_FILENO);
	CU_ASSERT_EQUAL(lg.fd_count, 1);
	lo = time(NULL);
	log_msg(&lg, LOG_T_NOTICE, "mosquitto version %s starting", "2.0.11");
	log_msg(&lg, LOG_T_ERROR, "Error: %d%%", 42);
	log_msg(&lg, LOG_T_INFORMATION, "%s", "");
	hi = time(NULL);
	log_close(&lg);
	CU_ASSERT_EQUAL(lg.file_fd, -1);

	p = slurp(log_path);
	p = check_line(p, "mosquitto version 2.0.11 starting", lo, hi);
	p = check_line(p, "Error: 42%", lo, hi);
	p = check_line(p, "", lo, hi);
	CU_ASSERT_EQUAL(*p, '\0');
	unlink(log_path);
}

static void test_append_mode(void)
{
	struct config cfg;
	struct log lg;
	FILE *f;

	file_config(&cfg);
	f = fopen(log_path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("earlier line\n", f);
	fclose(f);
	for (int round = 0; round < 2; round++) {
		CU_ASSERT_EQUAL_FATAL(log_open(&lg, &cfg), ST_OK);
		log_msg(&lg, LOG_T_WARNING, "round %d", round);
		log_close(&lg);
	}
	cfg.log_timestamp = false;
	CU_ASSERT_EQUAL_FATAL(log_open(&lg, &cfg), ST_OK);
	log_msg(&lg, LOG_T_WARNING, "no stamp");
	log_close(&lg);
	{
		const char *p = slurp(log_path);
		time_t now = time(NULL);

		CU_ASSERT_EQUAL(strncmp(p, "earlier line\n", 13), 0);
		p = check_line(p + 13, "round 0", now - 5, now);
		p = check_line(p, "round 1", now - 5, now);
		CU_ASSERT_STRING_EQUAL(p, "no stamp\n");
	}
	unlink(log_path);
}

/* log_rotate's case: the file is renamed away, log_reopen starts a new one at the same path,
 * and a copy of the struct log (as each worker holds) follows without being told. */
static void test_reopen(void)
{
	struct config cfg;
	struct log lg, copy;
	char rotated[80];

	file_config(&cfg);
	cfg.log_timestamp = false;
	CU_ASSERT_EQUAL_FATAL(log_open(&lg, &cfg), ST_OK);
	copy = lg;
	log_msg(&copy, LOG_T_WARNING, "before");
	snprintf(rotated, sizeof(rotated), "%s.1", log_path);
	CU_ASSERT_EQUAL_FATAL(rename(log_path, rotated), 0);
	CU_ASSERT_EQUAL(log_reopen(&lg, &cfg), ST_OK);
	log_msg(&copy, LOG_T_WARNING, "after");
	CU_ASSERT_STRING_EQUAL(slurp(rotated), "before\n");
	CU_ASSERT_STRING_EQUAL(slurp(log_path), "after\n");
	/* A path that cannot be opened keeps the old file. */
	snprintf(cfg.log_dests[0].path, sizeof(cfg.log_dests[0].path), "/nonexistent/dir/x");
	CU_ASSERT_EQUAL(log_reopen(&lg, &cfg), ST_ERR_SYS);
	log_msg(&copy, LOG_T_WARNING, "still");
	CU_ASSERT_STRING_EQUAL(slurp(log_path), "after\nstill\n");
	log_close(&lg);
	unlink(rotated);
	unlink(log_path);
}

static void test_timestamp_format(void)
{
	struct config cfg;
	struct log lg;
	char want[64];
	const char *p;
	time_t now;
	struct tm tm;

	file_config(&cfg);
	snprintf(cfg.log_timestamp_format, sizeof(cfg.log_timestamp_format), "[%%Y]");
	CU_ASSERT_EQUAL_FATAL(log_open(&lg, &cfg), ST_OK);
	now = time(NULL);
	log_msg(&lg, LOG_T_ERROR, "iso");
	log_close(&lg);
	localtime_r(&now, &tm);
	strftime(want, sizeof(want), "[%Y]: iso\n", &tm);
	p = slurp(log_path);
	CU_ASSERT_STRING_EQUAL(p, want);
	unlink(log_path);
}

/* Logs one line of each type; returns the set of types that reached the file. */
static uint32_t types_written(struct config *cfg)
{
	static const uint32_t all[] = {LOG_T_ERROR,       LOG_T_WARNING,   LOG_T_NOTICE,
	                               LOG_T_INFORMATION, LOG_T_DEBUG,     LOG_T_SUBSCRIBE,
	                               LOG_T_UNSUBSCRIBE, LOG_T_WEBSOCKETS};
	struct log lg;
	uint32_t seen = 0;
	const char *p;

	CU_ASSERT_EQUAL_FATAL(log_open(&lg, cfg), ST_OK);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		CU_ASSERT_EQUAL(log_enabled(&lg, all[i]), (lg.types & all[i]) != 0);
		log_msg(&lg, all[i], "type %u", (unsigned)all[i]);
	}
	log_close(&lg);
	for (p = slurp(log_path); (p = strstr(p, "type ")) != NULL; p++)
		seen |= (uint32_t)strtoul(p + 5, NULL, 10);
	/* Start the next round on an empty file. */
	CU_ASSERT_EQUAL(truncate(log_path, 0), 0);
	return seen;
}

static void test_type_filtering(void)
{
	struct config cfg;
	char err[256];

	file_config(&cfg);
	CU_ASSERT_EQUAL(types_written(&cfg),
	                LOG_T_ERROR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFORMATION);
	CU_ASSERT_EQUAL(config_parse_line(&cfg, "log_type debug", "t", 1, err, sizeof(err)), ST_OK);
	CU_ASSERT_EQUAL(config_parse_line(&cfg, "log_type subscribe", "t", 2, err, sizeof(err)),
	                ST_OK);
	CU_ASSERT_EQUAL(types_written(&cfg), LOG_T_DEBUG | LOG_T_SUBSCRIBE);
	CU_ASSERT_EQUAL(config_parse_line(&cfg, "log_type none", "t", 3, err, sizeof(err)), ST_OK);
	CU_ASSERT_EQUAL(types_written(&cfg), 0);
	cfg.verbose = true; /* -v: every type, as Mosquitto's log_type all */
	CU_ASSERT_EQUAL(types_written(&cfg), LOG_T_ALL);
	unlink(log_path);
}

/* Output of one log call with stdout and stderr redirected to temporary files. */
struct captured {
	char out[256]; /* what reached stdout */
	char err[256]; /* what reached stderr */
};

static void capture_into(int tmp, char *dst, size_t size)
{
	ssize_t n = pread(tmp, dst, size - 1, 0);

	dst[n > 0 ? n : 0] = '\0';
	close(tmp);
}

static struct captured capture(struct config *cfg, uint32_t type, const char *msg)
{
	char out_path[64] = "/tmp/test_log_out.XXXXXX", err_path[64] = "/tmp/test_log_err.XXXXXX";
	int out = mkstemp(out_path), err = mkstemp(err_path);
	int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
	struct captured c;
	struct log lg;

	CU_ASSERT_FATAL(out >= 0 && err >= 0 && saved_out >= 0 && saved_err >= 0);
	unlink(out_path);
	unlink(err_path);
	fflush(stdout); /* CUnit's own report must not land in the capture */
	fflush(stderr);
	dup2(out, STDOUT_FILENO);
	dup2(err, STDERR_FILENO);
	if (log_open(&lg, cfg) == ST_OK) {
		log_msg(&lg, type, "%s", msg);
		log_close(&lg);
	}
	dup2(saved_out, STDOUT_FILENO);
	dup2(saved_err, STDERR_FILENO);
	close(saved_out);
	close(saved_err);
	capture_into(out, c.out, sizeof(c.out));
	capture_into(err, c.err, sizeof(c.err));
	return c;
}

static void test_std_destinations(void)
{
	struct config cfg;
	struct captured c;

	config_defaults(&cfg); /* no log_dest: stderr, as Mosquitto */
	cfg.log_timestamp = false;
	c = capture(&cfg, LOG_T_ERROR, "to stderr");
	CU_ASSERT_STRING_EQUAL(c.err, "to stderr\n");
	CU_ASSERT_STRING_EQUAL(c.out, "");
	c = capture(&cfg, LOG_T_DEBUG, "filtered");
	CU_ASSERT_STRING_EQUAL(c.err, "");

	cfg.log_dest_count = 1;
	cfg.log_dests[0].kind = LOG_DEST_STDOUT;
	c = capture(&cfg, LOG_T_ERROR, "to stdout");
	CU_ASSERT_STRING_EQUAL(c.out, "to stdout\n");
	CU_ASSERT_STRING_EQUAL(c.err, "");
	/* -v keeps the destinations (mosquitto 2.0.11: -v with log_dest stdout logs to stdout). */
	cfg.verbose = true;
	c = capture(&cfg, LOG_T_DEBUG, "debug");
	CU_ASSERT_STRING_EQUAL(c.out, "debug\n");
	CU_ASSERT_STRING_EQUAL(c.err, "");

	cfg.log_dest_count = 2;
	cfg.log_dests[1].kind = LOG_DEST_STDERR;
	c = capture(&cfg, LOG_T_WARNING, "both");
	CU_ASSERT_STRING_EQUAL(c.out, "both\n");
	CU_ASSERT_STRING_EQUAL(c.err, "both\n");

	cfg.log_dest_count = 1;
	cfg.log_dests[0].kind = LOG_DEST_NONE;
	c = capture(&cfg, LOG_T_ERROR, "nowhere");
	CU_ASSERT_STRING_EQUAL(c.out, "");
	CU_ASSERT_STRING_EQUAL(c.err, "");
}

/* What the topic callback saw. */
struct topic_seen {
	unsigned calls;  /* number of calls */
	uint32_t type;   /* type of the last call */
	char line[4096]; /* last line */
	unsigned len;    /* its length */
};

static void topic_cb(void *ctx, uint32_t type, const char *line, unsigned len)
{
	struct topic_seen *s = ctx;

	s->calls++;
	s->type = type;
	s->len = len;
	memcpy(s->line, line, len < sizeof(s->line) ? len : sizeof(s->line));
}

static void test_topic_destination(void)
{
	struct topic_seen seen;
	struct config cfg;
	struct log lg;

	config_defaults(&cfg);
	cfg.log_timestamp = false;
	cfg.log_types = LOG_T_ALL;
	cfg.log_dest_count = 1;
	cfg.log_dests[0].kind = LOG_DEST_TOPIC;
	memset(&seen, 0, sizeof(seen));
	CU_ASSERT_EQUAL_FATAL(log_open(&lg, &cfg), ST_OK);
	CU_ASSERT_TRUE(lg.to_topic);
	CU_ASSERT_EQUAL(lg.fd_count, 0);
	log_msg(&lg, LOG_T_ERROR, "before the callback is set");
	lg.topic_fn = topic_cb;
	lg.topic_ctx = &seen;
	log_msg(&lg, LOG_T_SUBSCRIBE, "client1 1 a/b");
	CU_ASSERT_EQUAL(seen.calls, 1);
	CU_ASSERT_EQUAL(seen.type, LOG_T_SUBSCRIBE);
	CU_ASSERT_EQUAL(seen.len, strlen("client1 1 a/b"));
	CU_ASSERT_EQUAL(memcmp(seen.line, "client1 1 a/b", seen.len), 0);
	log_msg(&lg, LOG_T_DEBUG, "debug is never published");
	CU_ASSERT_EQUAL(seen.calls, 1);
	log_close(&lg);

	/* Without a topic destination the callback is not called even when set. */
	file_config(&cfg);
	CU_ASSERT_EQUAL_FATAL(log_open(&lg, &cfg), ST_OK);
	lg.topic_fn = topic_cb;
	lg.topic_ctx = &seen;
	log_msg(&lg, LOG_T_ERROR, "to the file only");
	CU_ASSERT_EQUAL(seen.calls, 1);
	log_close(&lg);
	CU_ASSERT_PTR_NOT_NULL(strstr(slurp(log_path), ": to the file only\n"));
	unlink(log_path);
}

static void test_long_message(void)
{
	struct config cfg;
	struct log lg;
	char *msg = malloc(5000);
	const char *p;
	size_t len;

	CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
	memset(msg, 'm', 4999);
	msg[4999] = '\0';
	file_config(&cfg);
	CU_ASSERT_EQUAL_FATAL(log_open(&lg, &cfg), ST_OK);
	log_msg(&lg, LOG_T_ERROR, "%s", msg);
	log_msg(&lg, LOG_T_ERROR, "after");
	log_close(&lg);
	free(msg);
	p = slurp(log_path);
	len = (size_t)(strchr(p, '\n') - p);
	CU_ASSERT(len > 2000 && len < 2048);
	CU_ASSERT_EQUAL(strncmp(p + len - 4, "m...", 4), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(p + len + 1, ": after\n"));
	unlink(log_path);
}

/* The naive model of log_escape for one byte b (followed by `next`, -1 at the end). */
static const char *model_escape(unsigned b, int next, char *buf)
{
	if (b == '\\')
		return "\\\\";
	if (b == '\n')
		return "\\n";
	if (b == '\r')
		return "\\r";
	if (b == '\t')
		return "\\t";
	if (b < 0x20 || b == 0x7f || (b == 0xc2 && next >= 0x80 && next <= 0x9f)) {
		snprintf(buf, 8, "\\x%02x", b);
		return buf;
	}
	buf[0] = (char)b;
	buf[1] = '\0';
	return buf;
}

/* Reverses log_escape: the original bytes, so escaping is shown unambiguous. */
static size_t unescape(const char *s, size_t n, uint8_t *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			out[o++] = (uint8_t)s[i];
			continue;
		}
		CU_ASSERT_FATAL(i + 1 < n);
		switch (s[++i]) {
		case '\\':
			out[o++] = '\\';
			break;
		case 'n':
			out[o++] = '\n';
			break;
		case 'r':
			out[o++] = '\r';
			break;
		case 't':
			out[o++] = '\t';
			break;
		default:
			CU_ASSERT_FATAL(s[i] == 'x' && i + 2 < n);
			out[o++] = (uint8_t)strtoul((char[]){s[i + 1], s[i + 2], 0}, NULL, 16);
			i += 2;
		}
	}
	return o;
}

static void test_escape_every_byte(void)
{
	for (unsigned b = 0; b < 256; b++) {
		/* Alone, and before each possible next byte (which matters only after 0xc2). */
		for (int next = -1; next < 256; next++) {
			uint8_t in[2] = {(uint8_t)b, (uint8_t)next};
			size_t len = next < 0 ? 1 : 2, used, n;
			char out[16], m1[8], m2[8], want[16];
			bool pair = b == 0xc2 && next >= 0x80 && next <= 0x9f;

			n = log_escape(out, sizeof(out), in, len, &used);
			CU_ASSERT_EQUAL(used, len);
			if (pair)
				snprintf(want, sizeof(want), "\\xc2\\x%02x", (unsigned)next);
			else
				snprintf(want, sizeof(want), "%s%s", model_escape(b, next, m1),
				         next < 0 ? "" : model_escape((unsigned)next, -1, m2));
			CU_ASSERT_EQUAL_FATAL(n, strlen(want));
			CU_ASSERT_EQUAL_FATAL(memcmp(out, want, n), 0);
			for (size_t i = 0; i < n; i++)
				CU_ASSERT((uint8_t)out[i] >= 0x20 && (uint8_t)out[i] != 0x7f);
		}
	}
}

static void test_escape_round_trip(void)
{
	uint8_t in[300], back[300];
	char out[300 * LOG_ESCAPE_MAX];
	unsigned seed = 12345;

	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(rand_r(&seed) % 300), used, n;

		for (size_t i = 0; i < len; i++)
			in[i] = (uint8_t)(round & 1
			                          ? rand_r(&seed)
			                          : "a\\\n\r\t\x01\x7f\xc2\x9b\xc3"[rand_r(&seed) %
			                                                            11]);
		n = log_escape(out, sizeof(out), in, len, &used);
		CU_ASSERT_EQUAL(used, len);
		CU_ASSERT_PTR_NULL(memchr(out, '\n', n));
		CU_ASSERT_EQUAL_FATAL(unescape(out, n, back), len);
		CU_ASSERT_EQUAL(memcmp(back, in, len), 0);
	}
}

static void test_escape_truncation(void)
{
	static const char in[] = "id\nwith\\ctl\x1b[2J\xc2\x9b end";
	size_t len = sizeof(in) - 1, used, full_n, n;
	char full[128], out[128];

	full_n = log_escape(full, sizeof(full), in, len, &used);
	CU_ASSERT_EQUAL(used, len);
	for (size_t cap = 0; cap <= full_n; cap++) {
		uint8_t back[128];

		memset(out, '#', sizeof(out));
		n = log_escape(out, cap, in, len, &used);
		CU_ASSERT(n <= cap);
		CU_ASSERT_EQUAL(out[cap], '#'); /* never past cap */
		/* A prefix of the whole escape that stops between escapes: it unescapes to exactly
		 * the bytes consumed, and the next escape would not have fitted. */
		CU_ASSERT_EQUAL(memcmp(out, full, n), 0);
		CU_ASSERT_EQUAL_FATAL(unescape(out, n, back), used);
		CU_ASSERT_EQUAL(memcmp(back, in, used), 0);
		CU_ASSERT(used == len || n + LOG_ESCAPE_MAX * 2 > cap);
		CU_ASSERT(cap < full_n ? used < len : used == len);
	}
}

/* A message carrying a client's newline stays one line, escaped; a cut one is marked. */
static void test_escaped_lines(void)
{
	struct config cfg;
	struct log lg;
	char *id = malloc(3000);
	const char *p;
	size_t len;

	CU_ASSERT_PTR_NOT_NULL_FATAL(id);
	memset(id, '\n', 2999);
	id[2999] = '\0';
	file_config(&cfg);
	CU_ASSERT_EQUAL_FATAL(log_open(&lg, &cfg), ST_OK);
	log_msg(&lg, LOG_T_NOTICE, "Client %s disconnected.", "evil\n1700000000: forged\\\x07");
	log_msg(&lg, LOG_T_NOTICE, "Client %.*s disconnected.", 2999, id);
	log_close(&lg);
	free(id);
	p = slurp(log_path);
	p = check_line(p, "Client evil\\n1700000000: forged\\\\\\x07 disconnected.", 0, time(NULL));
	len = (size_t)(strchr(p, '\n') - p);
	CU_ASSERT(len > 2000 && len < 2048);
	CU_ASSERT_EQUAL(strncmp(p + len - 5, "\\n...", 5), 0);
	CU_ASSERT_EQUAL(p[len + 1], '\0');
	unlink(log_path);
}

static void test_open_failures(void)
{
	struct config cfg;
	struct log lg;
	char out[512] = "";
	FILE *sink = tmpfile();
	int saved = dup(STDERR_FILENO);

	CU_ASSERT_FATAL(sink != NULL && saved >= 0);
	config_defaults(&cfg);
	cfg.log_dest_count = 2;
	cfg.log_dests[0].kind = LOG_DEST_STDOUT;
	cfg.log_dests[1].kind = LOG_DEST_FILE;
	snprintf(cfg.log_dests[1].path, sizeof(cfg.log_dests[1].path), "/nonexistent/dir/x.log");
	dup2(fileno(sink), STDERR_FILENO);
	CU_ASSERT_EQUAL(log_open(&lg, &cfg), ST_ERR_SYS);
	dup2(saved, STDERR_FILENO);
	close(saved);
	CU_ASSERT_EQUAL(lg.file_fd, -1);
	CU_ASSERT_EQUAL(lg.fd_count, 0);
	rewind(sink);
	CU_ASSERT(fread(out, 1, sizeof(out) - 1, sink) > 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "/nonexistent/dir/x.log"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "No such file or directory"));
	fclose(sink);
}

static void test_syslog_destination(void)
{
	struct config cfg;
	struct log lg;

	/* syslog(3) output cannot be read back here; this checks the flag and that logging to a
	 * syslog destination (with or without a running syslogd) returns. */
	config_defaults(&cfg);
	cfg.log_dest_count = 1;
	cfg.log_dests[0].kind = LOG_DEST_SYSLOG;
	CU_ASSERT_EQUAL_FATAL(log_open(&lg, &cfg), ST_OK);
	CU_ASSERT_TRUE(lg.to_syslog);
	CU_ASSERT_EQUAL(lg.fd_count, 0);
	log_msg(&lg, LOG_T_INFORMATION, "test_log: syslog destination");
	log_close(&lg);
	CU_ASSERT_FALSE(lg.to_syslog);
}

#define THREADS          4
#define LINES_PER_THREAD 1000 /* 4 x 1000 x 210 bytes fit slurp()'s buffer */

/* A worker of the concurrency test. */
struct writer {
	struct log *lg; /* shared log */
	int id;         /* writer number */
	pthread_t tid;  /* its thread */
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char pad[200];

	memset(pad, 'a' + w->id, sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (int i = 0; i < LINES_PER_THREAD; i++)
		log_msg(w->lg, LOG_T_NOTICE, "w%d %05d %s", w->id, i, pad);
	return NULL;
}

static void test_concurrent_lines_whole(void)
{
	struct writer w[THREADS];
	int next[THREADS] = {0};
	struct config cfg;
	struct log lg;
	const char *p;
	unsigned lines = 0;

	file_config(&cfg);
	cfg.log_timestamp = false;
	CU_ASSERT_EQUAL_FATAL(log_open(&lg, &cfg), ST_OK);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct writer){.lg = &lg, .id = i};
		CU_ASSERT_EQUAL_FATAL(pthread_create(&w[i].tid, NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(w[i].tid, NULL);
	log_close(&lg);
	/* Every line whole, and each writer's lines in its own order. */
	for (p = slurp(log_path); *p != '\0'; lines++) {
		int id, seq, n = 0;
		const char *nl = strchr(p, '\n');

		CU_ASSERT_FATAL(nl != NULL);
		CU_ASSERT_FATAL(sscanf(p, "w%d %d %n", &id, &seq, &n) == 2 && n > 0);
		CU_ASSERT_FATAL(id >= 0 && id < THREADS);
		CU_ASSERT_EQUAL(seq, next[id]);
		next[id] = seq + 1;
		CU_ASSERT_EQUAL(nl - (p + n), 199);
		for (const char *c = p + n; c < nl; c++)
			if (*c != 'a' + id) {
				CU_FAIL("torn line");
				break;
			}
		p = nl + 1;
	}
	CU_ASSERT_EQUAL(lines, THREADS * LINES_PER_THREAD);
	unlink(log_path);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"file format", test_file_format},
	        {"append mode", test_append_mode},
	        {"reopen (rotation)", test_reopen},
	        {"timestamp format", test_timestamp_format},
	        {"type filtering", test_type_filtering},
	        {"stderr, stdout, none", test_std_destinations},
	        {"topic destination", test_topic_destination},
	        {"long message", test_long_message},
	        {"escape every byte", test_escape_every_byte},
	        {"escape round trip", test_escape_round_trip},
	        {"escape truncation", test_escape_truncation},
	        {"escaped lines", test_escaped_lines},
	        {"open failures", test_open_failures},
	        {"syslog destination", test_syslog_destination},
	        {"concurrent writers", test_concurrent_lines_whole},
	        {NULL, NULL},
	};

	tu_add_suite("log", tests);
	return tu_run_registry();
}
