/*
 * starling-store-gen: writes a persistence directory as a broker with persistence would leave
 * it after compaction, to measure start-up (bench/persist-load.sh, issue 10: "1M retained
 * messages and 100k sessions load in seconds"), and reads one back (--check).
 *
 * One base segment per worker (NAME.<w>.0000000000000001, header flag STORE_FLAG_BASE, the
 * header's workers field the broker's worker count): retained messages in worker 0's, each
 * session's records in its home worker's (store_home, the broker's own shard function, so a
 * broker with that many workers replays them without resharding). Records come from the
 * store layer's encoder (src/store/record.h), written in 4 MiB chunks, then fsync'd.
 *
 * The data is a sensor network: retained messages on sensors/site<S>/dev<D>/<metric> (10
 * metrics per device, 1000 devices per site), payloads of --payload bytes beginning with
 * "retained <index>"; sessions gen-<i> (3.1.1 clean session 0: never expire) with --subs
 * filters on their site's devices, and --queued QoS 1 messages each waiting for them.
 * stdout: one JSON line with what was written and a probe: a retained topic and the start of
 * its payload, which a client must read back from the loaded broker.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/dir.h"
#include "store/home.h"
#include "store/record.h"

#define GEN_FLUSH_BYTES (4u << 20) /* a worker's buffer is written out past this */
#define GEN_WORKERS_MAX 64u
#define GEN_METRICS     10u
#define GEN_DEVICES     1000u /* per site */

static const char *const metrics[GEN_METRICS] = {"temperature", "humidity", "pressure", "co2",
                                                 "voltage",     "current",  "power",    "rssi",
                                                 "battery",     "status"};

struct gen_opts {
	const char *dir;
	const char *name;
	unsigned workers;
	uint64_t retained;
	uint32_t payload;
	uint64_t sessions;
	uint32_t subs;
	uint32_t queued;
	uint32_t queued_payload;
	bool check;
};

/* One worker's segment being written. */
struct gen_file {
	int fd;
	char path[4096];
	struct store_buf buf;
	uint64_t bytes;
	uint64_t records;
};

static const char usage_text[] =
        "usage: starling-store-gen DIR [options]      write a persistence directory\n"
        "       starling-store-gen DIR --check [--name NAME] [--workers N]   read one back\n"
        "  --name NAME            persistence_file, the files' prefix (starling.db)\n"
        "  --workers N            the broker's worker_threads: one base segment each (1)\n"
        "  --retained N           retained messages (1000000)\n"
        "  --payload BYTES        their payload size (256)\n"
        "  --sessions N           persistent sessions, 3.1.1 clean session 0 (100000)\n"
        "  --subs N               subscriptions per session (10)\n"
        "  --queued N             QoS 1 messages queued per session (3)\n"
        "  --queued-payload BYTES their payload size (64)\n"
        "Files NAME.<worker>.0000000000000001 must not exist yet. stdout: a JSON line.\n";

static int die_usage(const char *what, const char *arg)
{
	fprintf(stderr, "starling-store-gen: %s%s\n%s", what, arg, usage_text);
	return 2;
}

static int parse_u64(const char *arg, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 10);
	if (arg[0] == '\0' || arg[0] == '-' || *end != '\0' || errno != 0 || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_opts(struct gen_opts *o, int argc, char **argv)
{
	static const struct option longs[] = {
	        {"name", required_argument, NULL, 'n'},
	        {"workers", required_argument, NULL, 'w'},
	        {"retained", required_argument, NULL, 'r'},
	        {"payload", required_argument, NULL, 'p'},
	        {"sessions", required_argument, NULL, 's'},
	        {"subs", required_argument, NULL, 'u'},
	        {"queued", required_argument, NULL, 'q'},
	        {"queued-payload", required_argument, NULL, 'Q'},
	        {"check", no_argument, NULL, 'c'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	*o = (struct gen_opts){.name = "starling.db",
	                       .workers = 1,
	                       .retained = 1000000,
	                       .payload = 256,
	                       .sessions = 100000,
	                       .subs = 10,
	                       .queued = 3,
	                       .queued_payload = 64};
	int c;
	uint64_t v = 0;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'n':
			if (optarg[0] == '\0' || strchr(optarg, '/') != NULL)
				return die_usage("--name: a file name prefix without '/', not ",
				                 optarg);
			o->name = optarg;
			break;
		case 'w':
			bad = parse_u64(optarg, 1, GEN_WORKERS_MAX, &v);
			o->workers = (unsigned)v;
			break;
		case 'r':
			bad = parse_u64(optarg, 0, 100000000, &o->retained);
			break;
		case 'p':
			bad = parse_u64(optarg, 32, 1u << 20, &v);
			o->payload = (uint32_t)v;
			break;
		case 's':
			bad = parse_u64(optarg, 0, 10000000, &o->sessions);
			break;
		case 'u':
			bad = parse_u64(optarg, 0, 1000, &v);
			o->subs = (uint32_t)v;
			break;
		case 'q':
			bad = parse_u64(optarg, 0, 1000, &v);
			o->queued = (uint32_t)v;
			break;
		case 'Q':
			bad = parse_u64(optarg, 32, 1u << 20, &v);
			o->queued_payload = (uint32_t)v;
			break;
		case 'c':
			o->check = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 1;
		default:
			fputs(usage_text, stderr);
			return 2;
		}
		if (bad)
			return die_usage("out of range or not a number (--help): ", optarg);
	}
	if (optind != argc - 1)
		return die_usage("one directory expected", "");
	o->dir = argv[optind];
	return 0;
}

/* Topic of retained message i: sensors/site<S>/dev<D>/<metric>. */
static int retained_topic(uint64_t i, char *out, size_t cap)
{
	uint64_t dev = i / GEN_METRICS;
	return snprintf(out, cap, "sensors/site%" PRIu64 "/dev%" PRIu64 "/%s", dev / GEN_DEVICES,
	                dev % GEN_DEVICES, metrics[i % GEN_METRICS]);
}

/* A payload beginning with `head`, filled up to len with a pattern of its index. */
static void fill_payload(uint8_t *p, uint32_t len, const char *head, uint64_t i)
{
	size_t n = strlen(head);
	memcpy(p, head, n < len ? n : len);
	for (size_t k = n; k < len; k++)
		p[k] = (uint8_t)('a' + (k + i) % 26);
}

static int flush_file(struct gen_file *f)
{
	size_t off = 0;
	while (off < f->buf.len) {
		ssize_t w = write(f->fd, f->buf.data + off, f->buf.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			fprintf(stderr, "starling-store-gen: writing %s: %s\n", f->path,
			        strerror(errno));
			return -1;
		}
		off += (size_t)w;
	}
	f->bytes += f->buf.len;
	f->buf.len = 0;
	return 0;
}

static int put_rec(struct gen_file *f, const struct store_rec *r)
{
	int rc = store_rec_encode(&f->buf, r);
	if (rc != 0) {
		fprintf(stderr, "starling-store-gen: encoding a %s record: %s\n",
		        store_rec_type_name(r->type), store_strerror(rc));
		return -1;
	}
	f->records++;
	return f->buf.len >= GEN_FLUSH_BYTES ? flush_file(f) : 0;
}

static void seg_path(const struct gen_opts *o, unsigned w, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s.%u.%016" PRIx64, o->dir, o->name, w, (uint64_t)1);
}

static int open_files(const struct gen_opts *o, struct gen_file *files)
{
	if (mkdir(o->dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "starling-store-gen: mkdir %s: %s\n", o->dir, strerror(errno));
		return -1;
	}
	for (unsigned w = 0; w < o->workers; w++) {
		struct gen_file *f = &files[w];
		seg_path(o, w, f->path, sizeof(f->path));
		f->fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (f->fd < 0) {
			fprintf(stderr, "starling-store-gen: creating %s: %s\n", f->path,
			        strerror(errno));
			return -1;
		}
		struct store_header h = {.version = STORE_VERSION,
		                         .flags = STORE_FLAG_BASE,
		                         .worker = (uint16_t)w,
		                         .workers = (uint16_t)o->workers,
		                         .segment = 1};
		if (store_header_encode(&f->buf, &h) != 0) {
			fprintf(stderr, "starling-store-gen: encoding the header of %s\n", f->path);
			return -1;
		}
	}
	return 0;
}

static int write_retained(const struct gen_opts *o, struct gen_file *f0)
{
	char topic[128], head[64];
	uint8_t *payload = malloc(o->payload);
	if (payload == NULL)
		return -1;
	int rc = 0;
	for (uint64_t i = 0; i < o->retained && rc == 0; i++) {
		int tl = retained_topic(i, topic, sizeof(topic));
		snprintf(head, sizeof(head), "retained %" PRIu64 " ", i);
		fill_payload(payload, o->payload, head, i);
		struct store_rec r = {.type = STORE_REC_RETAIN_SET, .qos = 1};
		r.topic = (struct st_bytes){(const uint8_t *)topic, (uint32_t)tl};
		r.payload = (struct st_bytes){payload, o->payload};
		rc = put_rec(f0, &r);
	}
	free(payload);
	return rc;
}

/* Session i: its session-put, subscriptions and queued messages, on its home worker's log. */
static int write_session(const struct gen_opts *o, struct gen_file *files, uint64_t i,
                         uint8_t *payload)
{
	char client[32], filter[128], topic[128], head[64];
	int cl = snprintf(client, sizeof(client), "gen-%" PRIu64, i);
	struct st_bytes id = {(const uint8_t *)client, (uint32_t)cl};
	struct gen_file *f = &files[store_home(o->workers, id.ptr, id.len)];
	/* A site of its own among the retained tree's, devices near its index. */
	uint64_t site = i % 100, dev = i % GEN_DEVICES;

	struct store_rec r = {.type = STORE_REC_SESSION_PUT, .protocol = 4, .client = id};
	r.expiry_interval_s = UINT32_MAX; /* 3.1.1 clean session 0: never expires */
	if (put_rec(f, &r) != 0)
		return -1;
	for (uint32_t k = 0; k < o->subs; k++) {
		/* Exact, one-level and multi-level filters, as a dashboard or a collector holds. */
		int fl;
		if (k % 3 == 0)
			fl = snprintf(filter, sizeof(filter),
			              "sensors/site%" PRIu64 "/dev%" PRIu64 "/#", site,
			              (dev + k) % GEN_DEVICES);
		else if (k % 3 == 1)
			fl = snprintf(filter, sizeof(filter), "sensors/site%" PRIu64 "/+/%s", site,
			              metrics[k % GEN_METRICS]);
		else
			fl = snprintf(filter, sizeof(filter),
			              "sensors/site%" PRIu64 "/dev%" PRIu64 "/%s", site,
			              (dev + k) % GEN_DEVICES, metrics[k % GEN_METRICS]);
		r = (struct store_rec){.type = STORE_REC_SUB_ADD, .options = 1, .client = id};
		r.filter = (struct st_bytes){(const uint8_t *)filter, (uint32_t)fl};
		if (put_rec(f, &r) != 0)
			return -1;
	}
	for (uint32_t k = 0; k < o->queued; k++) {
		int tl = retained_topic(site * GEN_DEVICES * GEN_METRICS + dev * GEN_METRICS + k,
		                        topic, sizeof(topic));
		snprintf(head, sizeof(head), "queued %" PRIu64 "/%u ", i, k);
		fill_payload(payload, o->queued_payload, head, i + k);
		r = (struct store_rec){
		        .type = STORE_REC_QUEUE_ADD, .qos = 1, .msg_id = k + 1u, .client = id};
		r.topic = (struct st_bytes){(const uint8_t *)topic, (uint32_t)tl};
		r.payload = (struct st_bytes){payload, o->queued_payload};
		if (put_rec(f, &r) != 0)
			return -1;
	}
	return 0;
}

static int finish_files(const struct gen_opts *o, struct gen_file *files)
{
	for (unsigned w = 0; w < o->workers; w++) {
		struct gen_file *f = &files[w];
		if (flush_file(f) != 0)
			return -1;
		if (fsync(f->fd) != 0) {
			fprintf(stderr, "starling-store-gen: fsync %s: %s\n", f->path,
			        strerror(errno));
			return -1;
		}
		close(f->fd);
		f->fd = -1;
	}
	int dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int generate(const struct gen_opts *o)
{
	struct gen_file files[GEN_WORKERS_MAX];
	memset(files, 0, sizeof(files));
	for (unsigned w = 0; w < GEN_WORKERS_MAX; w++)
		files[w].fd = -1;
	double t0 = now_s();
	uint8_t *qpayload = malloc(o->queued_payload);
	int rc = qpayload != NULL && open_files(o, files) == 0 && write_retained(o, &files[0]) == 0
	                 ? 0
	                 : -1;
	for (uint64_t i = 0; i < o->sessions && rc == 0; i++)
		rc = write_session(o, files, i, qpayload);
	if (rc == 0)
		rc = finish_files(o, files);
	free(qpayload);
	uint64_t bytes = 0, records = 0;
	for (unsigned w = 0; w < o->workers; w++) {
		if (files[w].fd >= 0) {
			/* Failed half-way: a partial base must not pass for a broker's state. */
			close(files[w].fd);
			unlink(files[w].path);
		}
		store_buf_free(&files[w].buf);
		bytes += files[w].bytes;
		records += files[w].records;
	}
	if (rc != 0)
		return 1;
	char topic[128] = "";
	if (o->retained > 0)
		retained_topic(o->retained - 1, topic, sizeof(topic));
	printf("{\"dir\":\"%s\",\"name\":\"%s\",\"workers\":%u,\"retained\":%" PRIu64
	       ",\"payload\":%u,\"sessions\":%" PRIu64 ",\"subs_per_session\":%u,"
	       "\"queued_per_session\":%u,\"records\":%" PRIu64 ",\"bytes\":%" PRIu64
	       ",\"seconds\":%.3f,\"probe_topic\":\"%s\",\"probe_payload\":\"retained %" PRIu64
	       " \"}\n",
	       o->dir, o->name, o->workers, o->retained, o->payload, o->sessions, o->subs,
	       o->queued, records, bytes, now_s() - t0, topic, o->retained ? o->retained - 1 : 0);
	return 0;
}

/*
 * --check: reads every worker's base back with the record decoder: the header (magic, base
 * flag, worker, worker count), every record's CRC and fields, and that each session record
 * sits on its client's home worker. Prints the counts per record type as JSON.
 */
static int check(const struct gen_opts *o)
{
	uint64_t counts[STORE_REC__MAX + 1] = {0};
	uint64_t misplaced = 0;
	for (unsigned w = 0; w < o->workers; w++) {
		char path[4096];
		seg_path(o, w, path, sizeof(path));
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) != 0) {
			fprintf(stderr, "starling-store-gen: %s: %s\n", path, strerror(errno));
			return 1;
		}
		size_t len = (size_t)st.st_size;
		const uint8_t *d = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
		close(fd);
		if (len < STORE_HEADER_LEN || d == MAP_FAILED ||
		    memcmp(d, store_magic, STORE_MAGIC_LEN) != 0) {
			fprintf(stderr, "starling-store-gen: %s: not a Starling log\n", path);
			return 1;
		}
		/* The header by hand: a reader that does not know the base flag yet refuses it. */
		uint32_t flags = (uint32_t)d[12] | (uint32_t)d[13] << 8 | (uint32_t)d[14] << 16 |
		                 (uint32_t)d[15] << 24;
		unsigned hw = d[16] | d[17] << 8, hn = d[18] | d[19] << 8;
		size_t off = (size_t)(d[10] | d[11] << 8);
		if (flags != STORE_FLAG_BASE || hw != w || hn != o->workers ||
		    store_crc32c(0, d, 28) != ((uint32_t)d[28] | (uint32_t)d[29] << 8 |
		                               (uint32_t)d[30] << 16 | (uint32_t)d[31] << 24)) {
			fprintf(stderr,
			        "starling-store-gen: %s: a wrong header (flags %u, worker %u of "
			        "%u, "
			        "or its CRC)\n",
			        path, flags, hw, hn);
			munmap((void *)d, len);
			return 1;
		}
		while (off < len) {
			struct store_rec r;
			size_t used;
			int rc = store_rec_decode(d + off, len - off, &r, &used);
			if (rc != 0) {
				fprintf(stderr, "starling-store-gen: %s at %zu: %s\n", path, off,
				        store_strerror(rc));
				munmap((void *)d, len);
				return 1;
			}
			counts[r.type]++;
			if (r.client.len > 0 &&
			    store_home(o->workers, r.client.ptr, r.client.len) != w)
				misplaced++;
			if (r.type == STORE_REC_RETAIN_SET && w != 0)
				misplaced++;
			off += used;
		}
		munmap((void *)d, len);
	}
	printf("{\"retain_set\":%" PRIu64 ",\"session_put\":%" PRIu64 ",\"sub_add\":%" PRIu64
	       ",\"queue_add\":%" PRIu64 ",\"misplaced\":%" PRIu64 "}\n",
	       counts[STORE_REC_RETAIN_SET], counts[STORE_REC_SESSION_PUT],
	       counts[STORE_REC_SUB_ADD], counts[STORE_REC_QUEUE_ADD], misplaced);
	return misplaced == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct gen_opts o;
	int rc = parse_opts(&o, argc, argv);
	if (rc != 0)
		return rc == 1 ? 0 : rc;
	return o.check ? check(&o) : generate(&o);
}
