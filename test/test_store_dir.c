/*
 * The persistence directory (src/store/dir.h): real files in a fresh directory under /tmp per
 * test. Recovery of a clean chain, a torn tail cut at every offset of the last record, a
 * flipped byte in an older segment, a missing segment, a missing base, a newer header, a file
 * that only has our name, logs of another worker count (resharded into 1, 2 and 4 workers),
 * a worker's missing log, the lock, compaction (state kept, older segments gone, the later
 * one untouched, a crash's leftovers cleaned) and a full disk during compaction (RLIMIT_FSIZE
 * with SIGXFSZ ignored, so the write fails with EFBIG as it would with ENOSPC). What recovery
 * logs is captured in a memfd and checked.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "store/dir.h"
#include "store/segment.h"
#include "store_gen.h"
#include "store_model.h"
#include "testutil.h"

#define NAME "starling.log"

static char dir[64];
static struct log cap_lg;
static char err[512];

static void setup(void)
{
	int fd = memfd_create("store-log", 0);

	strcpy(dir, "/tmp/st-storedir-XXXXXX");
	if (!mkdtemp(dir) || fd < 0)
		abort();
	memset(&cap_lg, 0, sizeof(cap_lg));
	cap_lg.types = LOG_T_ALL;
	cap_lg.fds[0] = fd;
	cap_lg.fd_count = 1;
	cap_lg.file_fd = -1;
	err[0] = '\0';
}

static void teardown(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d)) != NULL) {
		char p[512];

		if (de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, "..")))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
	close(cap_lg.fds[0]);
}

/* Whether the captured log holds s. */
static bool logged(const char *s)
{
	static char buf[1 << 16];
	ssize_t n = pread(cap_lg.fds[0], buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return strstr(buf, s) != NULL;
}

static void path_of(char *out, const char *name)
{
	snprintf(out, 512, "%s/%s", dir, name);
}

static void seg_name(char *out, unsigned w, uint64_t seq, const char *suffix)
{
	snprintf(out, 128, NAME ".%u.%016llx%s", w, (unsigned long long)seq, suffix);
}

static void write_file(const char *name, const void *p, size_t n)
{
	char path[512];
	FILE *f;

	path_of(path, name);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(p, 1, n, f), n);
	fclose(f);
}

static bool exists(const char *name)
{
	char path[512];

	path_of(path, name);
	return access(path, F_OK) == 0;
}

static long file_size(const char *name)
{
	char path[512];
	struct stat sb;

	path_of(path, name);
	return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* How many directory entries contain s. */
static unsigned count_named(const char *s)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	while (d && (de = readdir(d)) != NULL)
		n += strstr(de->d_name, s) != NULL;
	if (d)
		closedir(d);
	return n;
}

static void seg_begin(struct store_buf *b, unsigned w, unsigned workers, uint64_t seq,
                      uint32_t flags)
{
	struct store_header h = {.flags = flags,
	                         .worker = (uint16_t)w,
	                         .workers = (uint16_t)workers,
	                         .segment = seq};

	b->len = 0;
	CU_ASSERT_EQUAL_FATAL(store_header_encode(b, &h), 0);
}

/* n random records into b and m; ends[i] (if not NULL) the end of record i. */
static void seg_fill(struct store_buf *b, struct sgen *g, struct model *m, unsigned n, size_t *ends)
{
	for (unsigned i = 0; i < n; i++) {
		sgen_record(g, m);
		CU_ASSERT_EQUAL_FATAL(store_rec_encode(b, &g->r), 0);
		model_apply(m, &g->r);
		if (ends)
			ends[i] = b->len;
	}
}

/* Writes segment seq of worker w: header then n random records. */
static void make_seg(unsigned w, unsigned workers, uint64_t seq, bool base, struct sgen *g,
                     struct model *m, unsigned n, size_t *ends, struct store_buf *b)
{
	char name[128];

	seg_begin(b, w, workers, seq, base ? STORE_FLAG_BASE : 0);
	seg_fill(b, g, m, n, ends);
	seg_name(name, w, seq, "");
	write_file(name, b->data, b->len);
}

static void replay_chain(const struct store_chain *c, struct model *m)
{
	for (unsigned i = 0; i < c->nsegs; i++) {
		struct store_seg seg;
		struct store_rec r;

		CU_ASSERT_EQUAL_FATAL(store_seg_open(&seg, c->segs[i].data, c->segs[i].len, 0), 0);
		CU_ASSERT_EQUAL(seg.hdr.segment, c->segs[i].seq);
		CU_ASSERT_EQUAL((seg.hdr.flags & STORE_FLAG_BASE) != 0, i == 0);
		while (store_seg_next(&seg, &r) > 0)
			model_apply(m, &r);
		CU_ASSERT_EQUAL(seg.stop, 0);
	}
}

static unsigned home_fn(unsigned n, const uint8_t *client, size_t len)
{
	unsigned h = 7;

	for (size_t i = 0; i < len; i++)
		h = h * 31 + client[i];
	return h % n;
}

/* The worker whose log holds r: its session's home; retained writes (and who set them) are
 * worker 0's. */
static unsigned rec_home(const struct store_rec *r, unsigned n)
{
	if (!r->client.len || r->type == STORE_REC_RETAIN_SOURCE)
		return 0;
	return home_fn(n, r->client.ptr, r->client.len);
}

/* Opens the directory and recovers it; returns recover's result. */
static int open_recover(struct store_dir *d, unsigned workers, struct store_chain *chains)
{
	int e = store_dir_open(d, dir, NAME, workers, err, sizeof(err));

	CU_ASSERT_EQUAL_FATAL(e, 0);
	return store_dir_recover(d, home_fn, &cap_lg, chains, err, sizeof(err));
}

static void test_fresh_start(void)
{
	struct store_chain chains[3];
	struct store_dir d;
	char name[128];

	setup();
	for (int round = 0; round < 2; round++) {
		CU_ASSERT_EQUAL_FATAL(open_recover(&d, 3, chains), 0);
		for (unsigned w = 0; w < 3; w++) {
			CU_ASSERT_EQUAL(chains[w].nsegs, 1);
			CU_ASSERT_EQUAL(chains[w].segs[0].seq, 1);
			CU_ASSERT_EQUAL(chains[w].segs[0].len, STORE_HEADER_LEN);
			seg_name(name, w, 1, "");
			CU_ASSERT(exists(name));
		}
		store_chains_free(chains, 3);
		store_dir_close(&d);
	}
	CU_ASSERT(!logged("Warning"));
	CU_ASSERT(!logged("Error"));
	CU_ASSERT(exists(NAME ".lock"));
	teardown();
}

/* A clean chain per worker: every segment in order, the state the records made. */
static void test_clean_chain(void)
{
	struct store_chain chains[2];
	struct sgen g = {.clients = 6};
	struct model m0 = {0}, m1 = {0}, r0 = {0}, r1 = {0};
	struct store_buf b = {0};
	struct store_dir d;
	long size7;
	char name[128];

	setup();
	srand(21);
	make_seg(0, 2, 5, true, &g, &m0, 40, NULL, &b);
	make_seg(0, 2, 6, false, &g, &m0, 40, NULL, &b);
	make_seg(0, 2, 7, false, &g, &m0, 40, NULL, &b);
	seg_name(name, 0, 7, "");
	size7 = file_size(name);
	make_seg(1, 2, 3, true, &g, &m1, 30, NULL, &b);
	/* Unrelated files and a moved-aside segment are left alone. */
	write_file("notes.txt", "x", 1);
	write_file(NAME ".backup", "x", 1);
	write_file(NAME ".0.xyz", "x", 1);
	write_file(NAME ".01.0000000000000001", "x", 1);
	write_file(NAME ".0.0000000000000002.dropped-1", "x", 1);
	CU_ASSERT_EQUAL_FATAL(open_recover(&d, 2, chains), 0);
	CU_ASSERT_EQUAL(chains[0].nsegs, 3);
	CU_ASSERT_EQUAL(chains[0].segs[0].seq, 5);
	CU_ASSERT_EQUAL(chains[0].segs[2].seq, 7);
	CU_ASSERT_EQUAL((long)chains[0].segs[2].len, size7);
	CU_ASSERT_EQUAL(chains[1].nsegs, 1);
	replay_chain(&chains[0], &r0);
	replay_chain(&chains[1], &r1);
	CU_ASSERT(model_equal(&m0, &r0));
	CU_ASSERT(model_equal(&m1, &r1));
	CU_ASSERT(exists("notes.txt") && exists(NAME ".backup") && exists(NAME ".0.xyz"));
	CU_ASSERT(exists(NAME ".01.0000000000000001"));
	CU_ASSERT(exists(NAME ".0.0000000000000002.dropped-1"));
	CU_ASSERT(!logged("Warning"));
	store_chains_free(chains, 2);
	store_dir_close(&d);
	model_free(&m0);
	model_free(&m1);
	model_free(&r0);
	model_free(&r1);
	store_buf_free(&b);
	teardown();
}

/* Two brokers on one directory: the second is refused while the first holds the lock. */
static void test_lock(void)
{
	struct store_dir d, d2;

	setup();
	CU_ASSERT_EQUAL_FATAL(store_dir_open(&d, dir, NAME, 1, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(store_dir_open(&d2, dir, NAME, 1, err, sizeof(err)), -EWOULDBLOCK);
	CU_ASSERT(strstr(err, "another broker is running") != NULL);
	CU_ASSERT(strstr(err, NAME ".lock") != NULL);
	store_dir_close(&d);
	CU_ASSERT_EQUAL(store_dir_open(&d2, dir, NAME, 1, err, sizeof(err)), 0);
	store_dir_close(&d2);
	/* Not a directory; a bad file name. */
	write_file("plain", "x", 1);
	{
		char p[512];

		path_of(p, "plain");
		CU_ASSERT_EQUAL(store_dir_open(&d2, p, NAME, 1, err, sizeof(err)), -ENOTDIR);
		CU_ASSERT(strstr(err, "plain") != NULL);
		path_of(p, "sub");
		CU_ASSERT_EQUAL(store_dir_open(&d2, p, NAME, 1, err, sizeof(err)), 0);
		store_dir_close(&d2);
		unlink(strcat(p, "/" NAME ".lock"));
		path_of(p, "sub");
		rmdir(p);
	}
	CU_ASSERT_EQUAL(store_dir_open(&d2, dir, "a/b", 1, err, sizeof(err)), -EINVAL);
	teardown();
}

static void replay_file(const char *name, struct model *m, uint32_t *flags);

/* Applies the records of a segment's first len bytes. */
static void replay_prefix(const uint8_t *data, size_t len, struct model *m)
{
	struct store_seg seg;
	struct store_rec r;

	CU_ASSERT_EQUAL_FATAL(store_seg_open(&seg, data, len, 0), 0);
	while (store_seg_next(&seg, &r) > 0)
		model_apply(m, &r);
	CU_ASSERT_EQUAL(seg.stop, 0);
}

/* The last record torn at every offset: the file cut at the record before, the rest kept. */
static void test_torn_tail(void)
{
	struct sgen g = {.clients = 4};
	struct store_buf b1 = {0}, b2 = {0};
	struct model m = {0}, before = {0};
	size_t ends[20];
	char name[128];

	srand(22);
	seg_begin(&b1, 0, 1, 1, STORE_FLAG_BASE);
	seg_fill(&b1, &g, &m, 30, NULL);
	seg_begin(&b2, 0, 1, 2, 0);
	seg_fill(&b2, &g, &m, 19, ends);
	/* The model before the last record: the same generation without it. */
	{
		struct store_seg seg;
		struct store_rec r;

		CU_ASSERT_EQUAL_FATAL(store_seg_open(&seg, b1.data, b1.len, 1), 0);
		while (store_seg_next(&seg, &r) > 0)
			model_apply(&before, &r);
		CU_ASSERT_EQUAL_FATAL(store_seg_open(&seg, b2.data, ends[18], 1), 0);
		while (store_seg_next(&seg, &r) > 0)
			model_apply(&before, &r);
	}
	seg_fill(&b2, &g, &m, 1, ends + 19);
	seg_name(name, 0, 2, "");
	for (size_t cut = ends[18]; cut < ends[19]; cut++) {
		struct store_chain chains[1];
		struct model r = {0};
		struct store_dir d;

		setup();
		write_file(NAME ".0.0000000000000001", b1.data, b1.len);
		write_file(name, b2.data, cut);
		CU_ASSERT_EQUAL_FATAL(open_recover(&d, 1, chains), 0);
		CU_ASSERT_EQUAL(chains[0].nsegs, 2);
		CU_ASSERT_EQUAL(chains[0].segs[1].len, ends[18]);
		CU_ASSERT_EQUAL(file_size(name), (long)ends[18]);
		replay_chain(&chains[0], &r);
		CU_ASSERT(model_equal(&r, &before));
		CU_ASSERT_EQUAL(logged("Warning") && logged(name), cut != ends[18]);
		CU_ASSERT(!logged("Error"));
		store_chains_free(chains, 1);
		store_dir_close(&d);
		model_free(&r);
		teardown();
	}
	model_free(&m);
	model_free(&before);
	store_buf_free(&b1);
	store_buf_free(&b2);
}

/*
 * A segment appended to in commits keeps whole commits only: cut anywhere inside the last
 * commit (inside a record or between two of its records), recovery goes back to the commit
 * before it and says so.
 */
static void test_commit_tail(void)
{
	const struct store_rec commit = {.type = STORE_REC_COMMIT};
	struct sgen g = {.clients = 4, .origins = true};
	struct store_buf b1 = {0}, b2 = {0};
	struct model m = {0}, before = {0};
	size_t ends[12], kept;
	char name[128];

	srand(23);
	seg_begin(&b1, 0, 1, 1, STORE_FLAG_BASE | STORE_FLAG_COMMITS);
	seg_fill(&b1, &g, &before, 20, NULL);
	CU_ASSERT_EQUAL_FATAL(store_rec_encode(&b1, &commit), 0);
	seg_begin(&b2, 0, 1, 2, STORE_FLAG_COMMITS);
	seg_fill(&b2, &g, &before, 5, NULL);
	CU_ASSERT_EQUAL_FATAL(store_rec_encode(&b2, &commit), 0);
	kept = b2.len;
	/* The last commit: 12 records, then its commit record. */
	m = before;
	memset(&before, 0, sizeof(before));
	{
		struct store_seg seg;
		struct store_rec r;

		CU_ASSERT_EQUAL_FATAL(store_seg_open(&seg, b1.data, b1.len, 1), 0);
		while (store_seg_next(&seg, &r) > 0)
			model_apply(&before, &r);
		CU_ASSERT_EQUAL_FATAL(store_seg_open(&seg, b2.data, b2.len, 1), 0);
		while (store_seg_next(&seg, &r) > 0)
			model_apply(&before, &r);
		CU_ASSERT_EQUAL(seg.commit_end, kept);
	}
	seg_fill(&b2, &g, &m, 12, ends);
	CU_ASSERT_EQUAL_FATAL(store_rec_encode(&b2, &commit), 0);
	seg_name(name, 0, 2, "");
	for (size_t cut = kept; cut <= b2.len; cut++) {
		struct store_chain chains[1];
		struct model r = {0};
		struct store_dir d;
		bool whole = cut == b2.len, near = whole || (cut - kept) % 11 == 0;

		/* Every record boundary and its neighbours, and a sample of the rest. */
		for (unsigned i = 0; i < 12; i++)
			near = near || (cut + 1 >= ends[i] && cut <= ends[i] + 1);
		if (!near)
			continue;

		setup();
		write_file(NAME ".0.0000000000000001", b1.data, b1.len);
		write_file(name, b2.data, cut);
		CU_ASSERT_EQUAL_FATAL(open_recover(&d, 1, chains), 0);
		CU_ASSERT_EQUAL(chains[0].segs[1].len, whole ? b2.len : kept);
		CU_ASSERT_EQUAL(file_size(name), (long)(whole ? b2.len : kept));
		replay_chain(&chains[0], &r);
		CU_ASSERT(model_equal(&r, whole ? &m : &before));
		CU_ASSERT_EQUAL(logged("Warning") && logged(name), cut != kept && !whole);
		/* Whole records of a commit without its end: the commit is what was cut. */
		for (unsigned i = 0; i < 12; i++)
			if (cut == ends[i])
				CU_ASSERT(logged("a commit cut short"));
		store_chains_free(chains, 1);
		store_dir_close(&d);
		model_free(&r);
		teardown();
	}
	model_free(&m);
	model_free(&before);
	store_buf_free(&b1);
	store_buf_free(&b2);
}

/* A flipped byte in an older segment: cut there, the segments after it moved aside. */
static void test_flipped_middle(void)
{
	struct sgen g = {.clients = 4};
	struct store_chain chains[2];
	struct store_buf b = {0};
	struct model m = {0}, m1 = {0}, r = {0}, r1 = {0}, want = {0};
	size_t ends[30];
	char name2[128], name3[128];
	struct store_dir d;

	setup();
	srand(23);
	make_seg(0, 2, 1, true, &g, &m, 30, NULL, &b);
	make_seg(1, 2, 1, true, &g, &m1, 10, NULL, &b);
	make_seg(0, 2, 2, false, &g, &m, 30, ends, &b);
	/* Record 15 of segment 2 damaged: records 0 .. 14 stay. */
	b.data[ends[14] + 12] ^= 0x40;
	seg_name(name2, 0, 2, "");
	write_file(name2, b.data, b.len);
	{
		struct store_buf b1 = {0};
		struct model tmp = {0};
		uint32_t flags;

		make_seg(0, 2, 3, false, &g, &tmp, 20, NULL, &b1);
		store_buf_free(&b1);
		model_free(&tmp);
		/* want: segment 1 and the first 15 records of segment 2. */
		replay_file(NAME ".0.0000000000000001", &want, &flags);
		replay_prefix(b.data, ends[14], &want);
	}
	seg_name(name3, 0, 3, "");
	CU_ASSERT_EQUAL_FATAL(open_recover(&d, 2, chains), 0);
	CU_ASSERT_EQUAL(chains[0].nsegs, 2);
	CU_ASSERT_EQUAL(chains[0].segs[1].len, ends[14]);
	CU_ASSERT_EQUAL(file_size(name2), (long)ends[14]);
	CU_ASSERT(!exists(name3));
	CU_ASSERT_EQUAL(count_named(".0.0000000000000003.dropped-"), 1);
	CU_ASSERT(logged("CRC32C") && logged("Warning"));
	CU_ASSERT(logged("Error") && logged("follows a damaged segment"));
	replay_chain(&chains[1], &r1);
	CU_ASSERT(model_equal(&m1, &r1));
	replay_chain(&chains[0], &r);
	CU_ASSERT(model_equal(&r, &want));
	store_chains_free(chains, 2);
	store_dir_close(&d);
	/* Recovering again finds the same, now clean, chain. */
	model_free(&r);
	CU_ASSERT_EQUAL_FATAL(open_recover(&d, 2, chains), 0);
	replay_chain(&chains[0], &r);
	CU_ASSERT(model_equal(&r, &want));
	CU_ASSERT_EQUAL(count_named(".dropped-"), 1);
	store_chains_free(chains, 2);
	store_dir_close(&d);
	model_free(&m);
	model_free(&m1);
	model_free(&r);
	model_free(&r1);
	model_free(&want);
	store_buf_free(&b);
	teardown();
}

/* A missing middle segment: the chain stops before it, later ones moved aside. */
static void test_missing_middle(void)
{
	struct sgen g = {.clients = 4};
	struct store_chain chains[1];
	struct store_buf b = {0};
	struct model m = {0}, m2 = {0}, r = {0};
	struct store_dir d;

	setup();
	srand(24);
	make_seg(0, 1, 1, true, &g, &m, 20, NULL, &b);
	make_seg(0, 1, 2, false, &g, &m, 20, NULL, &b);
	/* m2: the records of the segments after the gap, which are lost. */
	make_seg(0, 1, 4, false, &g, &m2, 20, NULL, &b);
	make_seg(0, 1, 5, false, &g, &m2, 20, NULL, &b);
	CU_ASSERT_EQUAL_FATAL(open_recover(&d, 1, chains), 0);
	CU_ASSERT_EQUAL(chains[0].nsegs, 2);
	replay_chain(&chains[0], &r);
	CU_ASSERT(model_equal(&m, &r));
	CU_ASSERT_EQUAL(count_named(".0.0000000000000004.dropped-"), 1);
	CU_ASSERT_EQUAL(count_named(".0.0000000000000005.dropped-"), 1);
	CU_ASSERT(logged(NAME ".0.0000000000000003 is missing"));
	store_chains_free(chains, 1);
	store_dir_close(&d);
	model_free(&m);
	model_free(&m2);
	model_free(&r);
	store_buf_free(&b);
	teardown();
}

/* Segments without a base: the start of the log is gone; an error, nothing touched. */
static void test_missing_base(void)
{
	struct sgen g = {.clients = 4};
	struct store_chain chains[1];
	struct store_buf b = {0};
	struct model m = {0};
	struct store_dir d;

	setup();
	srand(25);
	make_seg(0, 1, 2, false, &g, &m, 5, NULL, &b);
	make_seg(0, 1, 3, false, &g, &m, 5, NULL, &b);
	CU_ASSERT_EQUAL(open_recover(&d, 1, chains), -ENOENT);
	CU_ASSERT(strstr(err, "no base segment") != NULL);
	CU_ASSERT(exists(NAME ".0.0000000000000002") && exists(NAME ".0.0000000000000003"));
	store_dir_close(&d);
	model_free(&m);
	store_buf_free(&b);
	teardown();
}

/* Header errors name the file and refuse the start: newer, corrupt, not a log. */
static void test_bad_headers(void)
{
	static const struct {
		int off, val, want;
	} cases[] = {
	        {8, STORE_VERSION + 1, STORE_E_NEWER}, /* version */
	        {12, 32, STORE_E_NEWER},               /* an unknown flag */
	        {20, 9, STORE_E_HEADER},               /* segment number (CRC fails) */
	        {0, 'X', STORE_E_NOT_LOG},             /* magic */
	};
	struct store_buf b = {0};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct store_chain chains[1];
		struct store_dir d;
		uint32_t crc;

		setup();
		seg_begin(&b, 0, 1, 1, STORE_FLAG_BASE);
		b.data[cases[i].off] = (uint8_t)cases[i].val;
		if (cases[i].off == 8 || cases[i].off == 12) {
			crc = store_crc32c(0, b.data, 28);
			for (int k = 0; k < 4; k++)
				b.data[28 + k] = (uint8_t)(crc >> (8 * k));
		}
		write_file(NAME ".0.0000000000000001", b.data, b.len);
		CU_ASSERT_EQUAL(open_recover(&d, 1, chains), cases[i].want);
		CU_ASSERT(strstr(err, NAME ".0.0000000000000001") != NULL);
		CU_ASSERT(exists(NAME ".0.0000000000000001"));
		store_dir_close(&d);
		teardown();
	}
	/* A file with our name pattern that is not a log; Mosquitto's file is not read. */
	{
		struct store_chain chains[1];
		struct store_dir d;

		setup();
		write_file(NAME ".0.0000000000000001", "hello", 5);
		CU_ASSERT_EQUAL(open_recover(&d, 1, chains), STORE_E_NOT_LOG);
		CU_ASSERT(strstr(err, "not a Starling log") != NULL);
		store_dir_close(&d);
		teardown();
		setup();
		write_file(NAME, "mosquitto db", 12);
		CU_ASSERT_EQUAL(open_recover(&d, 1, chains), 0);
		CU_ASSERT(logged("does not import Mosquitto"));
		CU_ASSERT(exists(NAME));
		store_chains_free(chains, 1);
		store_dir_close(&d);
		teardown();
	}
	/* A header whose worker or segment is not its file name's. */
	{
		struct store_chain chains[2];
		struct store_dir d;

		setup();
		seg_begin(&b, 1, 2, 1, STORE_FLAG_BASE);
		write_file(NAME ".0.0000000000000001", b.data, b.len);
		CU_ASSERT_EQUAL(open_recover(&d, 2, chains), STORE_E_HEADER);
		CU_ASSERT(strstr(err, "header names worker 1") != NULL);
		store_dir_close(&d);
		teardown();
	}
	store_buf_free(&b);
}

/* Leftovers: a .tmp removed, segments a newer base supersedes removed. */
static void test_leftovers(void)
{
	struct sgen g = {.clients = 4};
	struct store_chain chains[1];
	struct store_buf b = {0};
	struct model old = {0}, m = {0}, r = {0};
	struct store_dir d;

	setup();
	srand(26);
	make_seg(0, 1, 1, true, &g, &old, 10, NULL, &b);
	make_seg(0, 1, 2, false, &g, &old, 10, NULL, &b);
	make_seg(0, 1, 3, true, &g, &m, 10, NULL, &b);
	make_seg(0, 1, 4, false, &g, &m, 10, NULL, &b);
	write_file(NAME ".0.0000000000000005.tmp", "half", 4);
	CU_ASSERT_EQUAL_FATAL(open_recover(&d, 1, chains), 0);
	CU_ASSERT_EQUAL(chains[0].nsegs, 2);
	CU_ASSERT_EQUAL(chains[0].segs[0].seq, 3);
	replay_chain(&chains[0], &r);
	CU_ASSERT(model_equal(&m, &r));
	CU_ASSERT(!exists(NAME ".0.0000000000000001") && !exists(NAME ".0.0000000000000002"));
	CU_ASSERT(!exists(NAME ".0.0000000000000005.tmp"));
	CU_ASSERT(logged("superseded"));
	store_chains_free(chains, 1);
	store_dir_close(&d);
	model_free(&old);
	model_free(&m);
	model_free(&r);
	store_buf_free(&b);
	teardown();
}

/* A worker's whole log missing: a new empty base and a warning; mixed counts refused. */
static void test_missing_worker_and_mixed(void)
{
	struct sgen g = {.clients = 4};
	struct store_chain chains[3];
	struct store_buf b = {0};
	struct model m = {0};
	struct store_dir d;

	setup();
	srand(27);
	make_seg(0, 3, 1, true, &g, &m, 10, NULL, &b);
	make_seg(2, 3, 1, true, &g, &m, 10, NULL, &b);
	CU_ASSERT_EQUAL_FATAL(open_recover(&d, 3, chains), 0);
	CU_ASSERT_EQUAL(chains[1].nsegs, 1);
	CU_ASSERT_EQUAL(chains[1].segs[0].len, STORE_HEADER_LEN);
	CU_ASSERT(exists(NAME ".1.0000000000000001"));
	CU_ASSERT(logged("Warning: worker 1's log was missing"));
	store_chains_free(chains, 3);
	store_dir_close(&d);
	make_seg(1, 2, 7, true, &g, &m, 10, NULL, &b);
	CU_ASSERT_EQUAL(open_recover(&d, 3, chains), STORE_E_FOREIGN);
	CU_ASSERT(strstr(err, "two worker counts") != NULL);
	store_dir_close(&d);
	model_free(&m);
	store_buf_free(&b);
	teardown();
}

/*
 * A log of 3 workers (sessions on their home worker, retained on worker 0) opened with 1, 2
 * and 4 workers: one base per new worker, each session in its home log, retained in worker
 * 0's, the same state, the old files gone.
 */
static void test_reshard(void)
{
	static const unsigned counts[] = {1, 2, 4};
	struct sgen g = {.clients = 40};
	struct store_buf logs[3] = {{0}}, b = {0};
	struct model m = {0};

	srand(28);
	for (unsigned w = 0; w < 3; w++)
		seg_begin(&logs[w], w, 3, w == 1 ? 9 : 1, STORE_FLAG_BASE);
	for (int i = 0; i < 3000; i++) {
		unsigned w;

		sgen_record(&g, &m);
		model_apply(&m, &g.r);
		w = rec_home(&g.r, 3);
		CU_ASSERT_EQUAL_FATAL(store_rec_encode(&logs[w], &g.r), 0);
	}
	model_reshard(&m);
	for (unsigned k = 0; k < 3; k++) {
		struct store_chain chains[4];
		struct model all = {0};
		struct store_dir d;
		char name[128];

		setup();
		for (unsigned w = 0; w < 3; w++) {
			seg_name(name, w, w == 1 ? 9 : 1, "");
			write_file(name, logs[w].data, logs[w].len);
		}
		/* Worker 1's log continues in a second segment. */
		seg_begin(&b, 1, 3, 10, 0);
		seg_name(name, 1, 10, "");
		write_file(name, b.data, b.len);
		CU_ASSERT_EQUAL_FATAL(open_recover(&d, counts[k], chains), 0);
		CU_ASSERT(logged("Resharded"));
		for (unsigned w = 0; w < counts[k]; w++) {
			struct store_seg seg;
			struct store_rec r;

			CU_ASSERT_EQUAL(chains[w].nsegs, 1);
			CU_ASSERT_EQUAL(chains[w].segs[0].seq, 11);
			CU_ASSERT_EQUAL_FATAL(store_seg_open(&seg, chains[w].segs[0].data,
			                                     chains[w].segs[0].len, counts[k]),
			                      0);
			CU_ASSERT(seg.hdr.flags & STORE_FLAG_BASE);
			while (store_seg_next(&seg, &r) > 0) {
				unsigned want = rec_home(&r, counts[k]);

				/* Every base ends with its commit. */
				if (r.type != STORE_REC_COMMIT)
					CU_ASSERT_EQUAL(want, w);
			}
			replay_chain(&chains[w], &all);
		}
		CU_ASSERT(model_equal(&m, &all));
		for (unsigned w = 0; w < 3; w++) {
			seg_name(name, w, w == 1 ? 9 : 1, "");
			CU_ASSERT(!exists(name) || counts[k] > w);
		}
		CU_ASSERT(!exists(NAME ".1.000000000000000a"));
		CU_ASSERT_EQUAL(count_named(".tmp"), 0);
		store_chains_free(chains, counts[k]);
		store_dir_close(&d);
		/* Opened again with the same count: no resharding, the same state. */
		model_free(&all);
		CU_ASSERT_EQUAL_FATAL(open_recover(&d, counts[k], chains), 0);
		for (unsigned w = 0; w < counts[k]; w++)
			replay_chain(&chains[w], &all);
		CU_ASSERT(model_equal(&m, &all));
		store_chains_free(chains, counts[k]);
		store_dir_close(&d);
		model_free(&all);
		teardown();
	}
	for (unsigned w = 0; w < 3; w++)
		store_buf_free(&logs[w]);
	store_buf_free(&b);
	model_free(&m);
}

/* Old logs of 3 workers as test_reshard writes them; m gets the state. */
static void old_logs(struct store_buf logs[3], struct model *m)
{
	struct sgen g = {.clients = 30};

	srand(31);
	for (unsigned w = 0; w < 3; w++)
		seg_begin(&logs[w], w, 3, 4, STORE_FLAG_BASE);
	for (int i = 0; i < 1500; i++) {
		unsigned w;

		sgen_record(&g, m);
		model_apply(m, &g.r);
		w = rec_home(&g.r, 3);
		CU_ASSERT_EQUAL_FATAL(store_rec_encode(&logs[w], &g.r), 0);
	}
}

static void write_old_logs(const struct store_buf logs[3])
{
	char name[128];

	for (unsigned w = 0; w < 3; w++) {
		seg_name(name, w, 4, "");
		write_file(name, logs[w].data, logs[w].len);
	}
}

/*
 * A resharding cut short: the old logs still there beside all the new bases (the unlinks
 * lost) is finished; beside only some of them (the renames cut short) it starts over.
 */
static void test_reshard_cut_short(void)
{
	struct store_buf logs[3] = {{0}};
	struct model m = {0};

	old_logs(logs, &m);
	model_reshard(&m);
	for (int partial = 0; partial < 2; partial++) {
		struct store_chain chains[2];
		struct model all = {0};
		struct store_dir d;

		setup();
		write_old_logs(logs);
		CU_ASSERT_EQUAL_FATAL(open_recover(&d, 2, chains), 0);
		store_chains_free(chains, 2);
		store_dir_close(&d);
		CU_ASSERT(exists(NAME ".0.0000000000000005") && exists(NAME ".1.0000000000000005"));
		write_old_logs(logs);
		if (partial)
			CU_ASSERT_EQUAL(unlinkat(AT_FDCWD,
			                         strcat(strcpy((char[512]){0}, dir),
			                                "/" NAME ".1.0000000000000005"),
			                         0),
			                0);
		CU_ASSERT_EQUAL_FATAL(open_recover(&d, 2, chains), 0);
		CU_ASSERT(logged(partial ? "resharding again" : "Finishing a resharding"));
		CU_ASSERT(!exists(NAME ".0.0000000000000004") &&
		          !exists(NAME ".2.0000000000000004"));
		replay_chain(&chains[0], &all);
		replay_chain(&chains[1], &all);
		CU_ASSERT(model_equal(&m, &all));
		store_chains_free(chains, 2);
		store_dir_close(&d);
		model_free(&all);
		teardown();
	}
	/* New bases that are not above the old files: a mix recovery refuses. */
	{
		struct store_chain chains[2];
		struct store_buf b = {0};
		struct store_dir d;

		setup();
		write_old_logs(logs);
		seg_begin(&b, 0, 2, 2, STORE_FLAG_BASE);
		write_file(NAME ".0.0000000000000002", b.data, b.len);
		seg_begin(&b, 1, 2, 2, STORE_FLAG_BASE);
		write_file(NAME ".1.0000000000000002", b.data, b.len);
		CU_ASSERT_EQUAL(open_recover(&d, 2, chains), STORE_E_FOREIGN);
		CU_ASSERT(exists(NAME ".0.0000000000000004"));
		store_dir_close(&d);
		store_buf_free(&b);
		teardown();
	}
	for (unsigned w = 0; w < 3; w++)
		store_buf_free(&logs[w]);
	model_free(&m);
}

/* A full disk while resharding: the error returned, the old logs whole, no new file left. */
static void test_reshard_disk_full(void)
{
	struct store_buf logs[3] = {{0}};
	struct sigaction ign = {.sa_handler = SIG_IGN}, prev;
	struct store_chain chains[2];
	struct rlimit old, lim;
	struct model m = {0}, all = {0};
	struct store_dir d;
	int e;

	old_logs(logs, &m);
	model_reshard(&m);
	setup();
	write_old_logs(logs);
	CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &old), 0);
	sigaction(SIGXFSZ, &ign, &prev);
	lim = old;
	lim.rlim_cur = 2000;
	CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
	CU_ASSERT_EQUAL_FATAL(store_dir_open(&d, dir, NAME, 2, err, sizeof(err)), 0);
	e = store_dir_recover(&d, home_fn, &cap_lg, chains, err, sizeof(err));
	setrlimit(RLIMIT_FSIZE, &old);
	sigaction(SIGXFSZ, &prev, NULL);
	CU_ASSERT_EQUAL(e, -EFBIG);
	CU_ASSERT_EQUAL(count_named(".tmp"), 0);
	CU_ASSERT_EQUAL(count_named(NAME ".0."), 1);
	CU_ASSERT_EQUAL(file_size(NAME ".0.0000000000000004"), (long)logs[0].len);
	CU_ASSERT_EQUAL(file_size(NAME ".2.0000000000000004"), (long)logs[2].len);
	store_dir_close(&d);
	/* With room, the same directory reshards. */
	CU_ASSERT_EQUAL_FATAL(open_recover(&d, 2, chains), 0);
	replay_chain(&chains[0], &all);
	replay_chain(&chains[1], &all);
	CU_ASSERT(model_equal(&m, &all));
	store_chains_free(chains, 2);
	store_dir_close(&d);
	teardown();
	for (unsigned w = 0; w < 3; w++)
		store_buf_free(&logs[w]);
	model_free(&m);
	model_free(&all);
}

/* Reads a segment file whole. */
static uint8_t *slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	uint8_t *p;
	long n;

	path_of(path, name);
	f = fopen(path, "r");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc(n > 0 ? (size_t)n : 1);
	*len = fread(p, 1, (size_t)n, f);
	fclose(f);
	return p;
}

static void replay_file(const char *name, struct model *m, uint32_t *flags)
{
	struct store_seg seg;
	struct store_rec r;
	size_t len;
	uint8_t *p = slurp(name, &len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL_FATAL(store_seg_open(&seg, p, len, 0), 0);
	*flags = seg.hdr.flags;
	while (store_seg_next(&seg, &r) > 0)
		model_apply(m, &r);
	CU_ASSERT_EQUAL(seg.stop, 0);
	free(p);
}

/* Compaction: 1..4 become base 4 with their state; 5, being appended to, untouched. */
static void test_compact(void)
{
	struct sgen g = {.clients = 6};
	struct store_compact_stats cs;
	struct store_chain chains[2];
	struct store_buf b = {0};
	struct model m = {0}, m5 = {0}, base = {0}, r = {0};
	uint8_t *before5, *after5;
	size_t len5, len5b;
	struct store_dir d;
	uint32_t flags = 0;
	int fd;

	setup();
	srand(29);
	for (uint64_t q = 1; q <= 4; q++)
		make_seg(1, 2, q, q == 1, &g, &m, 300, NULL, &b);
	CU_ASSERT_EQUAL_FATAL(open_recover(&d, 2, chains), 0);
	store_chains_free(chains, 2);
	fd = store_dir_create_segment(&d, 1, 5, false, 0, err, sizeof(err));
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(store_dir_create_segment(&d, 1, 5, false, 0, err, sizeof(err)), -EEXIST);
	/* The worker appends to 5 through its descriptor, in commits. */
	seg_begin(&b, 1, 2, 5, STORE_FLAG_COMMITS);
	seg_fill(&b, &g, &m, 50, NULL);
	CU_ASSERT_EQUAL(store_rec_encode(&b, &(struct store_rec){.type = STORE_REC_COMMIT}), 0);
	CU_ASSERT_EQUAL(
	        pwrite(fd, b.data + STORE_HEADER_LEN, b.len - STORE_HEADER_LEN, STORE_HEADER_LEN),
	        (ssize_t)(b.len - STORE_HEADER_LEN));
	close(fd);
	/* Appending reopens it; a segment that does not exist is an error. */
	fd = store_dir_open_append(&d, 1, 5, false);
	CU_ASSERT(fd >= 0);
	CU_ASSERT_EQUAL(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
	CU_ASSERT_EQUAL(fcntl(fd, F_GETFL) & O_DIRECT, 0);
	CU_ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	CU_ASSERT_EQUAL(store_dir_open_append(&d, 1, 6, false), -ENOENT);
	CU_ASSERT_EQUAL(count_named(".tmp"), 0);
	before5 = slurp(NAME ".1.0000000000000005", &len5);
	CU_ASSERT_EQUAL(len5, b.len);
	/* Appending marked the segment as one that may hold session-auth records. */
	{
		struct store_header h;
		size_t hl;

		CU_ASSERT_EQUAL(store_header_decode(before5, len5, &h, &hl), 0);
		CU_ASSERT_EQUAL(h.flags, STORE_FLAG_COMMITS | STORE_FLAGS_RECORDS);
		CU_ASSERT_EQUAL(h.segment, 5);
	}
	CU_ASSERT(memcmp(before5 + STORE_HEADER_LEN, b.data + STORE_HEADER_LEN,
	                 b.len - STORE_HEADER_LEN) == 0);
	memcpy(b.data, before5, STORE_HEADER_LEN);
	/* The model of 1..4 alone. */
	for (uint64_t q = 1; q <= 4; q++) {
		char name[128];

		seg_name(name, 1, q, "");
		replay_file(name, &m5, &flags);
	}
	CU_ASSERT_EQUAL(store_dir_compact(&d, 1, 1, 4, &cs, err, sizeof(err)), 0);
	replay_file(NAME ".1.0000000000000004", &base, &flags);
	CU_ASSERT(flags & STORE_FLAG_BASE);
	CU_ASSERT(model_equal(&m5, &base));
	CU_ASSERT_EQUAL(cs.records_in, 1200);
	CU_ASSERT_EQUAL(cs.records_out, base.n);
	CU_ASSERT_EQUAL((long)cs.bytes_out, file_size(NAME ".1.0000000000000004"));
	CU_ASSERT(cs.bytes_out < cs.bytes_in);
	for (uint64_t q = 1; q <= 3; q++) {
		char name[128];

		seg_name(name, 1, q, "");
		CU_ASSERT(!exists(name));
	}
	after5 = slurp(NAME ".1.0000000000000005", &len5b);
	CU_ASSERT(len5b == len5 && memcmp(before5, after5, len5) == 0);
	CU_ASSERT_EQUAL(count_named(".tmp"), 0);
	/* A compaction whose first segment is not a base is refused. */
	CU_ASSERT_EQUAL(store_dir_compact(&d, 1, 5, 5, &cs, err, sizeof(err)), STORE_E_HEADER);
	CU_ASSERT(exists(NAME ".1.0000000000000005"));
	store_dir_close(&d);
	/* Recovery: base 4 then 5, the whole state. */
	CU_ASSERT_EQUAL_FATAL(open_recover(&d, 2, chains), 0);
	CU_ASSERT_EQUAL(chains[1].nsegs, 2);
	replay_chain(&chains[1], &r);
	CU_ASSERT(model_equal(&m, &r));
	store_chains_free(chains, 2);
	store_dir_close(&d);
	free(before5);
	free(after5);
	model_free(&m);
	model_free(&m5);
	model_free(&base);
	model_free(&r);
	store_buf_free(&b);
	teardown();
}

/* A base inside the range compacted supersedes what came before it. */
/* A snapshot given as records stands for segments 1 .. 3: none of them is read. */
static void test_compact_from(void)
{
	struct sgen g = {.clients = 6};
	struct store_compact_stats cs;
	struct store_buf b = {0}, snap = {0};
	struct model m = {0}, r = {0};
	struct store_state *st = store_state_new();
	struct store_dir d;
	struct store_seg seg;
	struct store_rec rec;
	uint8_t *seg4, *after4, *data;
	size_t len4, len4b, len;
	uint32_t flags;

	setup();
	srand(33);
	make_seg(0, 1, 1, true, &g, &m, 200, NULL, &b);
	make_seg(0, 1, 2, false, &g, &m, 200, NULL, &b);
	make_seg(0, 1, 3, false, &g, &m, 200, NULL, &b);
	make_seg(0, 1, 4, false, &g, &m, 50, NULL, &b);
	seg4 = slurp(NAME ".0.0000000000000004", &len4);
	/* The state of 1 .. 3, as the broker would encode it from memory. */
	for (uint64_t q = 1; q <= 3; q++) {
		char name[128];

		seg_name(name, 0, q, "");
		data = slurp(name, &len);
		CU_ASSERT_EQUAL_FATAL(store_seg_open(&seg, data, len, 1), 0);
		while (store_seg_next(&seg, &rec) > 0)
			CU_ASSERT_EQUAL(store_state_apply(st, &rec), 0);
		free(data);
	}
	CU_ASSERT_EQUAL_FATAL(store_state_encode(st, &snap, NULL, NULL, true), 0);
	CU_ASSERT_EQUAL_FATAL(store_dir_open(&d, dir, NAME, 1, err, sizeof(err)), 0);
	/* A damaged snapshot changes nothing. */
	snap.data[snap.len / 2] ^= 0x40;
	CU_ASSERT(store_dir_compact_from(&d, 0, 1, 3, snap.data, snap.len, &cs, err, sizeof(err)) <
	          0);
	CU_ASSERT_EQUAL(count_named(NAME ".0."), 4);
	CU_ASSERT_EQUAL(count_named(".tmp"), 0);
	snap.data[snap.len / 2] ^= 0x40;
	CU_ASSERT_EQUAL(
	        store_dir_compact_from(&d, 0, 1, 3, snap.data, snap.len, &cs, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(count_named(NAME ".0."), 2);
	CU_ASSERT_EQUAL(cs.bytes_in, snap.len);
	/* Base 3 then segment 4, untouched, replay to the whole state. */
	replay_file(NAME ".0.0000000000000003", &r, &flags);
	CU_ASSERT(flags & STORE_FLAG_BASE);
	replay_file(NAME ".0.0000000000000004", &r, &flags);
	CU_ASSERT(model_equal(&m, &r));
	after4 = slurp(NAME ".0.0000000000000004", &len4b);
	CU_ASSERT(len4 == len4b && memcmp(seg4, after4, len4) == 0);
	store_dir_close(&d);
	store_state_free(st);
	free(seg4);
	free(after4);
	model_free(&m);
	model_free(&r);
	store_buf_free(&b);
	store_buf_free(&snap);
	teardown();
}

static void test_compact_newer_base(void)
{
	struct sgen g = {.clients = 6};
	struct store_compact_stats cs;
	struct store_buf b = {0};
	struct model old = {0}, m = {0}, r = {0};
	struct store_dir d;
	uint32_t flags;

	setup();
	srand(32);
	make_seg(0, 1, 1, true, &g, &old, 100, NULL, &b);
	make_seg(0, 1, 2, false, &g, &old, 100, NULL, &b);
	make_seg(0, 1, 3, true, &g, &m, 100, NULL, &b);
	make_seg(0, 1, 4, false, &g, &m, 100, NULL, &b);
	CU_ASSERT_EQUAL_FATAL(store_dir_open(&d, dir, NAME, 1, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(store_dir_compact(&d, 0, 1, 4, &cs, err, sizeof(err)), 0);
	replay_file(NAME ".0.0000000000000004", &r, &flags);
	CU_ASSERT(model_equal(&m, &r));
	CU_ASSERT(!model_equal(&old, &r));
	CU_ASSERT_EQUAL(count_named(NAME ".0."), 1);
	store_dir_close(&d);
	model_free(&old);
	model_free(&m);
	model_free(&r);
	store_buf_free(&b);
	teardown();
}

/*
 * A full disk during compaction: RLIMIT_FSIZE below the base's size with SIGXFSZ ignored, so
 * write(2) fails with EFBIG where a full disk gives ENOSPC. Nothing changes but the .tmp,
 * which is removed.
 */
static void test_compact_disk_full(void)
{
	struct sgen g = {.clients = 6};
	struct store_compact_stats cs;
	struct store_chain chains[1];
	struct store_buf b = {0};
	struct model m = {0};
	struct rlimit old, lim;
	struct sigaction ign = {.sa_handler = SIG_IGN}, prev;
	long s1, s2;
	struct store_dir d;
	int e;

	setup();
	srand(30);
	make_seg(0, 1, 1, true, &g, &m, 400, NULL, &b);
	make_seg(0, 1, 2, false, &g, &m, 400, NULL, &b);
	s1 = file_size(NAME ".0.0000000000000001");
	s2 = file_size(NAME ".0.0000000000000002");
	CU_ASSERT_EQUAL_FATAL(open_recover(&d, 1, chains), 0);
	store_chains_free(chains, 1);
	CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_FSIZE, &old), 0);
	sigaction(SIGXFSZ, &ign, &prev);
	lim = old;
	lim.rlim_cur = 1000;
	CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
	e = store_dir_compact(&d, 0, 1, 2, &cs, err, sizeof(err));
	setrlimit(RLIMIT_FSIZE, &old);
	sigaction(SIGXFSZ, &prev, NULL);
	CU_ASSERT_EQUAL(e, -EFBIG);
	CU_ASSERT(strstr(err, ".tmp") != NULL);
	CU_ASSERT_EQUAL(count_named(".tmp"), 0);
	CU_ASSERT_EQUAL(file_size(NAME ".0.0000000000000001"), s1);
	CU_ASSERT_EQUAL(file_size(NAME ".0.0000000000000002"), s2);
	/* With room again it succeeds. */
	CU_ASSERT_EQUAL(store_dir_compact(&d, 0, 1, 2, &cs, err, sizeof(err)), 0);
	CU_ASSERT(!exists(NAME ".0.0000000000000001"));
	store_dir_close(&d);
	model_free(&m);
	store_buf_free(&b);
	teardown();
}

/* Reads segment `name` whole and walks it: its header flags, records and where it ends. */
static void walk_file(const char *name, uint32_t *flags, struct model *m, size_t *commit_end,
                      int *stop, size_t *zero_tail)
{
	size_t len;
	uint8_t *data = slurp(name, &len);
	struct store_seg seg;
	struct store_rec r;

	CU_ASSERT_EQUAL_FATAL(store_seg_open(&seg, data, len, 0), 0);
	*flags = seg.hdr.flags;
	while (store_seg_next(&seg, &r) > 0)
		if (m)
			model_apply(m, &r);
	*commit_end = seg.commit_end;
	*stop = seg.stop;
	*zero_tail = seg.zero_tail;
	free(data);
}

/*
 * Direct writes' preparations (store_seg_pad, store_zero_ahead, store_dir_create_segment with
 * zeros): the header gains STORE_FLAG_PADDED with a valid CRC, an empty commit padded to the
 * next boundary follows the last record (into the next block when the gap is too small for a
 * pad and a commit), an aligned end is left as it is, zeros written ahead are a clean end, and
 * recovery keeps every record and the file's zeros.
 */
static void test_pad_and_zeros(void)
{
	static const size_t gaps[] = {0, 1, 17, 18, 19, 4000};
	struct sgen g = {.clients = 3};
	struct store_buf b = {0};
	struct store_chain chains[1];
	struct store_dir d;
	char name[128], path[600];

	setup();
	srand(33);
	seg_name(name, 0, 1, "");
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	for (unsigned i = 0; i < sizeof(gaps) / sizeof(gaps[0]); i++) {
		struct model m = {0}, back = {0};
		uint64_t start = 0, off;
		size_t commit_end, zt;
		uint32_t flags;
		int stop, fd;

		/* A base whose records end `gaps[i]` bytes before a 4096 boundary (or on one). */
		seg_begin(&b, 0, 1, 1, STORE_FLAG_BASE | STORE_FLAG_COMMITS);
		seg_fill(&b, &g, &m, 5, NULL);
		CU_ASSERT_EQUAL_FATAL(
		        store_rec_encode(&b, &(struct store_rec){.type = STORE_REC_COMMIT}), 0);
		off = (b.len + STORE_PAD_MIN + STORE_COMMIT_LEN + gaps[i] + 4095) / 4096 * 4096 -
		      gaps[i];
		CU_ASSERT_EQUAL_FATAL(store_pad_encode(&b, off - b.len - STORE_COMMIT_LEN), 0);
		CU_ASSERT_EQUAL_FATAL(
		        store_rec_encode(&b, &(struct store_rec){.type = STORE_REC_COMMIT}), 0);
		CU_ASSERT_EQUAL_FATAL(b.len, off);
		off = b.len;
		write_file(name, b.data, b.len);
		fd = open(path, O_RDWR | O_CLOEXEC);
		CU_ASSERT_FATAL(fd >= 0);
		CU_ASSERT_EQUAL(store_seg_pad(fd, off, 4096, &start), 0);
		if (off % 4096 == 0) {
			CU_ASSERT_EQUAL(start, off);
		} else if (4096 - off % 4096 >= STORE_PAD_MIN + STORE_COMMIT_LEN) {
			CU_ASSERT_EQUAL(start, (off + 4095) / 4096 * 4096);
		} else {
			CU_ASSERT_EQUAL(start, (off + 4095) / 4096 * 4096 + 4096);
		}
		CU_ASSERT_EQUAL(store_zero_ahead(fd, start, start + 3 * 4096), 0);
		close(fd);
		CU_ASSERT_EQUAL(file_size(name), (long)(start + 3 * 4096));
		walk_file(name, &flags, &back, &commit_end, &stop, &zt);
		CU_ASSERT(flags & STORE_FLAG_PADDED);
		CU_ASSERT(flags & STORE_FLAG_BASE);
		CU_ASSERT_EQUAL(commit_end, start);
		CU_ASSERT_EQUAL(stop, 0);
		CU_ASSERT_EQUAL(zt, 3 * 4096);
		CU_ASSERT(model_equal(&m, &back));
		/* Recovery: the whole state, nothing cut, the zeros left in the file. */
		CU_ASSERT_EQUAL_FATAL(open_recover(&d, 1, chains), 0);
		CU_ASSERT_EQUAL(chains[0].segs[0].len, start);
		CU_ASSERT_EQUAL(file_size(name), (long)(start + 3 * 4096));
		CU_ASSERT(strstr(err, "dropped") == NULL);
		store_chains_free(chains, 1);
		store_dir_close(&d);
		model_free(&m);
		model_free(&back);
	}
	/* A new segment with zeros ahead: header (flagged), then zeros up to the size asked. */
	{
		int fd;
		uint32_t flags;
		size_t commit_end, zt;
		int stop;
		uint64_t start = 0;

		CU_ASSERT_EQUAL_FATAL(store_dir_open(&d, dir, NAME, 1, err, sizeof(err)), 0);
		fd = store_dir_create_segment(&d, 0, 2, true, 1 << 20, err, sizeof(err));
		CU_ASSERT_FATAL(fd >= 0);
		CU_ASSERT_EQUAL(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
		seg_name(name, 0, 2, "");
		CU_ASSERT_EQUAL(file_size(name), 1 << 20);
		walk_file(name, &flags, NULL, &commit_end, &stop, &zt);
		CU_ASSERT(flags & STORE_FLAG_PADDED);
		CU_ASSERT_EQUAL(commit_end, STORE_HEADER_LEN);
		CU_ASSERT_EQUAL(zt, (1 << 20) - STORE_HEADER_LEN);
		/* Whatever the file system says of direct I/O, the pad goes where it should. */
		CU_ASSERT_EQUAL(store_seg_pad(fd, STORE_HEADER_LEN, 4096, &start), 0);
		CU_ASSERT_EQUAL(start, 4096);
		close(fd);
		walk_file(name, &flags, NULL, &commit_end, &stop, &zt);
		CU_ASSERT_EQUAL(commit_end, 4096);
		CU_ASSERT_EQUAL(stop, 0);
		store_dir_close(&d);
	}
	store_buf_free(&b);
	teardown();
}

/* Aligned buffers stay aligned as they grow; one made aligned later moves once. */
static void test_buf_align(void)
{
	struct store_buf b = {0};

	CU_ASSERT_EQUAL(store_buf_reserve(&b, 10), 0);
	memcpy(b.data, "0123456789", 10);
	b.len = 10;
	CU_ASSERT_EQUAL(store_buf_align(&b, 65536), 0);
	CU_ASSERT_EQUAL((uintptr_t)b.data % 65536, 0);
	CU_ASSERT_EQUAL(memcmp(b.data, "0123456789", 10), 0);
	for (unsigned i = 0; i < 8; i++) {
		size_t was = b.cap;

		CU_ASSERT_EQUAL(store_buf_reserve(&b, b.cap - b.len + 1), 0); /* grows */
		CU_ASSERT(b.cap > was);
		CU_ASSERT_EQUAL((uintptr_t)b.data % 65536, 0);
	}
	CU_ASSERT_EQUAL(memcmp(b.data, "0123456789", 10), 0);
	/* Pads: any size from the minimum, refused below it. */
	b.len = 0;
	CU_ASSERT_EQUAL(store_pad_encode(&b, STORE_PAD_MIN - 1), STORE_E_FIELD);
	CU_ASSERT_EQUAL(store_pad_encode(&b, STORE_PAD_MIN), 0);
	CU_ASSERT_EQUAL(store_pad_encode(&b, 5000), 0);
	CU_ASSERT_EQUAL(b.len, STORE_PAD_MIN + 5000);
	{
		struct store_rec r;
		size_t used;

		CU_ASSERT_EQUAL(store_rec_decode(b.data, b.len, &r, &used), 0);
		CU_ASSERT_EQUAL(r.type, STORE_REC_PAD);
		CU_ASSERT_EQUAL(used, STORE_PAD_MIN);
		CU_ASSERT_EQUAL(store_rec_decode(b.data + used, b.len - used, &r, &used), 0);
		CU_ASSERT_EQUAL(used, 5000);
	}
	store_buf_free(&b);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"fresh directory: an empty base per worker", test_fresh_start},
	        {"clean chains replay what was written", test_clean_chain},
	        {"the lock refuses a second broker", test_lock},
	        {"a torn tail is cut at every offset", test_torn_tail},
	        {"a commit cut short is dropped whole", test_commit_tail},
	        {"a flipped byte in an older segment", test_flipped_middle},
	        {"a missing middle segment", test_missing_middle},
	        {"segments without a base are refused", test_missing_base},
	        {"bad headers, foreign files, Mosquitto's file", test_bad_headers},
	        {"a .tmp and superseded segments are removed", test_leftovers},
	        {"a missing worker log; mixed worker counts", test_missing_worker_and_mixed},
	        {"resharding 3 workers into 1, 2 and 4", test_reshard},
	        {"a resharding cut short is finished or redone", test_reshard_cut_short},
	        {"a full disk while resharding changes nothing", test_reshard_disk_full},
	        {"compaction keeps the state and the later segment", test_compact},
	        {"compaction over a newer base starts from it", test_compact_newer_base},
	        {"compaction from a snapshot reads no segment", test_compact_from},
	        {"a full disk during compaction changes nothing", test_compact_disk_full},
	        {"pads to a block boundary, zeros written ahead", test_pad_and_zeros},
	        {"aligned buffers and pad records", test_buf_align},
	        {NULL, NULL},
	};

	tu_add_suite("store directory", tests);
	return tu_run_registry();
}
