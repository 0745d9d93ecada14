/*
 * Start-up recovery of the persistence directory (store_dir_recover in dir.h): list the
 * directory, check every segment's header, then per worker take the newest base and the
 * segments that continue it. The rules, in the order they apply:
 *   - NAME itself (Mosquitto's mosquitto.db) is never read: Starling does not import it.
 *   - NAME.*.tmp is an unfinished base or segment: removed.
 *   - a header that fails, or names another worker or segment than its file name: an error
 *     naming the file, never an empty start.
 *   - every file of another worker count: resharded (compact.c); two counts: an error.
 *   - per worker: segments older than the newest base are superseded (a compaction that
 *     stopped after its rename) and unlinked; a torn or corrupt record cuts its file there
 *     (ftruncate + fsync) and what follows in the chain, like what follows a missing segment,
 *     is moved aside (.dropped-<time>), never deleted.
 *   - a worker with no file at all gets an empty base (logged at warning level if others had
 *     files: its log went missing); segments but no base is an error.
 * Files are read whole with read(2) into the chains the broker replays.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dirio.h"
#include "segment.h"

unsigned sd_files_of(const struct sd_file *files, unsigned n, unsigned w, unsigned *first)
{
	unsigned i = 0, k = 0;

	while (i < n && files[i].worker < w)
		i++;
	*first = i;
	while (i + k < n && files[i + k].worker == w)
		k++;
	return k;
}

void store_chains_free(struct store_chain *chains, unsigned n)
{
	for (unsigned w = 0; chains && w < n; w++) {
		for (unsigned i = 0; i < chains[w].nsegs; i++)
			free(chains[w].segs[i].data);
		free(chains[w].segs);
		chains[w].segs = NULL;
		chains[w].nsegs = 0;
	}
}

/* What a directory entry is to us. */
enum entry_kind { E_OTHER, E_MOSQUITTO, E_SEGMENT, E_TMP };

static enum entry_kind classify(const struct store_dir *d, const char *name, unsigned *w,
                                uint64_t *seq)
{
	size_t nl = strlen(d->name);
	const char *p = name + nl + 1;
	unsigned long wv = 0;
	uint64_t sv = 0;
	int digits = 0;

	if (strncmp(name, d->name, nl) != 0)
		return E_OTHER;
	if (name[nl] == '\0')
		return E_MOSQUITTO;
	if (name[nl] != '.')
		return E_OTHER;
	for (; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
		wv = wv * 10 + (unsigned long)(*p - '0');
	/* One spelling per worker: "NAME.01.x" is not worker 1's (sd_name would not find it). */
	if (digits == 0 || digits == 6 || wv > UINT16_MAX || *p != '.' ||
	    (digits > 1 && name[nl + 1] == '0'))
		return E_OTHER;
	p++;
	for (digits = 0; digits < 16; digits++, p++) {
		if (*p >= '0' && *p <= '9')
			sv = sv << 4 | (uint64_t)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			sv = sv << 4 | (uint64_t)(*p - 'a' + 10);
		else
			return E_OTHER;
	}
	*w = (unsigned)wv;
	*seq = sv;
	if (*p == '\0')
		return E_SEGMENT;
	return strcmp(p, ".tmp") == 0 ? E_TMP : E_OTHER;
}

/* Checks a segment's header: read up to the largest header a later version may have. */
static int read_header(const struct store_dir *d, const char *name, struct sd_file *f, char *err,
                       size_t errlen)
{
	uint8_t buf[UINT16_MAX + 1];
	struct store_header h;
	size_t got = 0, hl;
	int fd = openat(d->dfd, name, O_RDONLY | O_CLOEXEC), e;

	if (fd < 0) {
		e = errno;
		sd_err(err, errlen, "%s/%s: %s", d->path, name, strerror(e));
		return -e;
	}
	while (got < sizeof(buf)) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			close(fd);
			sd_err(err, errlen, "%s/%s: read: %s", d->path, name, strerror(e));
			return -e;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	e = store_header_decode(buf, got, &h, &hl);
	if (e) {
		sd_err(err, errlen, "%s/%s: %s", d->path, name, store_strerror(e));
		return e;
	}
	if (h.worker != f->worker || h.segment != f->seq) {
		sd_err(err, errlen, "%s/%s: its header names worker %u segment %016" PRIx64,
		       d->path, name, h.worker, h.segment);
		return STORE_E_HEADER;
	}
	f->workers = h.workers;
	f->flags = h.flags;
	return 0;
}

static int cmp_file(const void *a, const void *b)
{
	const struct sd_file *x = a, *y = b;

	if (x->worker != y->worker)
		return x->worker < y->worker ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int add_file(struct sd_file **files, unsigned *n, unsigned *cap, struct sd_file f)
{
	if (*n == *cap) {
		unsigned c = *cap ? 2 * *cap : 16;
		struct sd_file *p = realloc(*files, c * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*files = p;
		*cap = c;
	}
	(*files)[(*n)++] = f;
	return 0;
}

/* Lists the directory: segments (headers checked) sorted by worker and seq; .tmp removed. */
static int scan(const struct store_dir *d, struct log *lg, struct sd_file **files, unsigned *nfiles,
                char *err, size_t errlen)
{
	unsigned cap = 0;
	struct dirent *de;
	int fd = openat(d->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), e = 0;
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;

	*files = NULL;
	*nfiles = 0;
	if (!dir) {
		e = errno;
		if (fd >= 0)
			close(fd);
		sd_err(err, errlen, "%s: %s", d->path, strerror(e));
		return -e;
	}
	while (e == 0 && (errno = 0, de = readdir(dir)) != NULL) {
		struct sd_file f = {0};

		switch (classify(d, de->d_name, &f.worker, &f.seq)) {
		case E_MOSQUITTO:
			sd_log(lg, LOG_T_WARNING,
			       "Warning: %s/%s is not read: Starling does not import Mosquitto's "
			       "persistence format; it keeps its own log in %s.<worker>.<segment>",
			       d->path, de->d_name, d->name);
			break;
		case E_TMP:
			if (unlinkat(d->dfd, de->d_name, 0) == 0)
				sd_log(lg, LOG_T_NOTICE,
				       "Removed %s/%s: a segment whose writing was cut short",
				       d->path, de->d_name);
			break;
		case E_SEGMENT:
			e = read_header(d, de->d_name, &f, err, errlen);
			if (e == 0)
				e = add_file(files, nfiles, &cap, f);
			break;
		default:
			break;
		}
	}
	if (e == 0 && errno != 0) {
		e = -errno;
		sd_err(err, errlen, "%s: readdir: %s", d->path, strerror(-e));
	}
	closedir(dir);
	if (e == -ENOMEM)
		sd_err(err, errlen, "%s: out of memory", d->path);
	if (e) {
		free(*files);
		*files = NULL;
		*nfiles = 0;
		return e;
	}
	if (*nfiles > 1)
		qsort(*files, *nfiles, sizeof(**files), cmp_file);
	return 0;
}

/* Renames files[0 .. n) to .dropped-<time>; why says what came before them. */
static void move_aside(const struct store_dir *d, struct log *lg, const struct sd_file *files,
                       unsigned n, const char *why)
{
	long now = (long)time(NULL);

	for (unsigned i = 0; i < n; i++) {
		char from[SD_NAME_MAX], to[SD_NAME_MAX], suffix[48];
		int r = -1;

		sd_name(d, from, files[i].worker, files[i].seq, "");
		for (int k = 0; k < 100 && r != 0; k++) {
			if (k == 0)
				snprintf(suffix, sizeof(suffix), ".dropped-%ld", now);
			else
				snprintf(suffix, sizeof(suffix), ".dropped-%ld-%d", now, k);
			sd_name(d, to, files[i].worker, files[i].seq, suffix);
			r = renameat2(d->dfd, from, d->dfd, to, RENAME_NOREPLACE);
			if (r != 0 && errno != EEXIST)
				break;
		}
		if (r == 0)
			sd_log(lg, LOG_T_ERROR,
			       "Error: %s/%s follows %s; its records are not replayed: moved aside "
			       "as %s",
			       d->path, from, why, to);
		else
			sd_log(lg, LOG_T_ERROR,
			       "Error: %s/%s follows %s and could not be moved aside: %s", d->path,
			       from, why, strerror(errno));
	}
}

/* Cuts a file at its valid prefix, durably. */
static int truncate_at(const struct store_dir *d, const char *name, size_t len, char *err,
                       size_t errlen)
{
	int fd = openat(d->dfd, name, O_WRONLY | O_CLOEXEC), e = 0;

	if (fd < 0 || ftruncate(fd, (off_t)len) != 0 || fsync(fd) != 0)
		e = errno;
	if (fd >= 0)
		close(fd);
	if (e)
		sd_err(err, errlen, "%s/%s: truncating to %zu bytes: %s", d->path, name, len,
		       strerror(e));
	return -e;
}

static int chain_add(struct store_chain *c, uint64_t seq, uint8_t *data, size_t len)
{
	struct store_loaded *p = realloc(c->segs, (c->nsegs + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	c->segs = p;
	c->segs[c->nsegs++] = (struct store_loaded){.seq = seq, .data = data, .len = len};
	return 0;
}

/*
 * Reads segment f whole and walks its records. Returns 0 with *data and *len (the valid
 * prefix; the file cut there if it was damaged, *damaged then true), or an error.
 */
static int load_segment(const struct store_dir *d, struct log *lg, const struct sd_file *f,
                        uint16_t workers, uint8_t **data, size_t *len, bool *damaged, char *err,
                        size_t errlen)
{
	char name[SD_NAME_MAX];
	struct store_seg seg;
	struct store_rec r;
	int e;

	sd_name(d, name, f->worker, f->seq, "");
	e = sd_read_all(d, name, data, len);
	if (e) {
		sd_err(err, errlen, "%s/%s: %s", d->path, name, strerror(-e));
		return e;
	}
	e = store_seg_open(&seg, *data, *len, workers);
	if (e) {
		sd_err(err, errlen, "%s/%s: %s", d->path, name, store_strerror(e));
		free(*data);
		return e;
	}
	while (store_seg_next(&seg, &r) > 0)
		;
	*damaged = seg.stop != 0 || seg.commit_end != seg.valid_end;
	if (!*damaged) {
		*len = seg.valid_end; /* zeros written ahead stay in the file, out of the chain */
		return 0;
	}
	if (seg.stop != 0)
		sd_log(lg, LOG_T_WARNING,
		       "Warning: %s/%s: %s at offset %zu: %zu bytes (about %" PRIu64
		       " records) dropped",
		       d->path, name, store_strerror(seg.stop), seg.valid_end,
		       store_seg_dropped_bytes(&seg), store_seg_dropped_records(&seg));
	if (seg.commit_end != seg.valid_end)
		sd_log(lg, LOG_T_WARNING,
		       "Warning: %s/%s: a commit cut short at offset %zu: its %" PRIu64
		       " whole records (%zu bytes) dropped",
		       d->path, name, seg.commit_end, seg.records - seg.commit_records,
		       seg.valid_end - seg.commit_end);
	sd_log(lg, LOG_T_WARNING, "Warning: %s/%s: %" PRIu64 " records kept.", d->path, name,
	       seg.commit_records);
	e = truncate_at(d, name, seg.commit_end, err, errlen);
	if (e) {
		free(*data);
		return e;
	}
	*len = seg.commit_end;
	return 0;
}

int sd_chain_recover(const struct store_dir *d, struct log *lg, unsigned w, uint16_t workers,
                     const struct sd_file *files, unsigned nfiles, struct store_chain *out,
                     char *err, size_t errlen)
{
	char name[SD_NAME_MAX];
	unsigned base = nfiles, i;
	int e = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < nfiles; i++)
		if (files[i].flags & STORE_FLAG_BASE)
			base = i;
	if (base == nfiles) {
		sd_name(d, name, w, files[0].seq, "");
		sd_err(err, errlen,
		       "%s: worker %u's log has %u segment(s) from %s but no base segment: its "
		       "start "
		       "is missing",
		       d->path, w, nfiles, name);
		return -ENOENT;
	}
	for (i = 0; i < base; i++) {
		sd_name(d, name, w, files[i].seq, "");
		if (unlinkat(d->dfd, name, 0) == 0)
			sd_log(lg, LOG_T_NOTICE,
			       "Removed %s/%s: superseded by a newer base segment", d->path, name);
	}
	for (i = base; i < nfiles; i++) {
		uint64_t expect = files[base].seq + (i - base);
		bool damaged = false;
		uint8_t *data;
		size_t len;

		if (files[i].seq != expect) {
			sd_name(d, name, w, expect, "");
			move_aside(d, lg, files + i, nfiles - i, "a missing segment");
			sd_log(lg, LOG_T_ERROR, "Error: %s/%s is missing", d->path, name);
			break;
		}
		e = load_segment(d, lg, &files[i], workers, &data, &len, &damaged, err, errlen);
		if (e == 0 && chain_add(out, files[i].seq, data, len) != 0) {
			free(data);
			e = -ENOMEM;
			sd_err(err, errlen, "%s: out of memory", d->path);
		}
		if (e)
			break;
		if (damaged) {
			move_aside(d, lg, files + i + 1, nfiles - i - 1, "a damaged segment");
			break;
		}
	}
	if (e == 0)
		e = sd_sync_dir(d, err, errlen);
	if (e)
		store_chains_free(out, 1);
	return e;
}

/* Writes an empty base (seq 1) for worker w and loads it as its chain. */
static int new_base(struct store_dir *d, struct log *lg, unsigned w, bool missing,
                    struct store_chain *out, char *err, size_t errlen)
{
	struct sd_file f = {
	        .worker = w, .seq = 1, .workers = (uint16_t)d->workers, .flags = STORE_FLAG_BASE};
	char name[SD_NAME_MAX];
	int e = sd_write_tmp(d, w, (uint16_t)d->workers, 1, STORE_FLAG_BASE, NULL, NULL, NULL,
	                     false, NULL, NULL, NULL, err, errlen);

	if (e == 0)
		e = sd_commit(d, w, 1, err, errlen);
	if (e == 0)
		e = sd_sync_dir(d, err, errlen);
	if (e)
		return e;
	sd_name(d, name, w, 1, "");
	if (missing)
		sd_log(lg, LOG_T_WARNING,
		       "Warning: worker %u's log was missing from %s (other workers' logs are "
		       "there): its sessions are lost; started it anew as %s",
		       w, d->path, name);
	else
		sd_log(lg, LOG_T_INFORMATION, "Created %s/%s", d->path, name);
	return sd_chain_recover(d, lg, w, (uint16_t)d->workers, &f, 1, out, err, errlen);
}

/* Unlinks the files of worker count `workers` and drops them from the list. */
static int drop_count(const struct store_dir *d, struct sd_file *files, unsigned *nfiles,
                      uint16_t workers, char *err, size_t errlen)
{
	unsigned k = 0;

	for (unsigned i = 0; i < *nfiles; i++) {
		char name[SD_NAME_MAX];

		if (files[i].workers != workers) {
			files[k++] = files[i];
			continue;
		}
		sd_name(d, name, files[i].worker, files[i].seq, "");
		if (unlinkat(d->dfd, name, 0) != 0 && errno != ENOENT) {
			int e = errno;

			sd_err(err, errlen, "%s/%s: unlink: %s", d->path, name, strerror(e));
			return -e;
		}
	}
	*nfiles = k;
	return sd_sync_dir(d, err, errlen);
}

/*
 * A resharding cut short by a crash leaves two worker counts: the old logs, and new bases of
 * our count, all with one segment number above every old file's (sd_reshard picks it so).
 * If every worker has its new base, only the old files' removal was lost: finish it. If
 * some are missing, the renames were cut short and the old logs are still whole: remove the
 * new bases and reshard again. Any other mix is left for the caller to refuse.
 */
static int finish_reshard(const struct store_dir *d, struct log *lg, struct sd_file *files,
                          unsigned *nfiles, char *err, size_t errlen)
{
	uint64_t seq = 0, old_max = 0;
	unsigned ours = 0, others = 0;
	uint16_t other = 0;

	for (unsigned i = 0; i < *nfiles; i++) {
		const struct sd_file *f = &files[i];

		if (f->workers != d->workers) {
			if (others++ && f->workers != other)
				return 0;
			other = f->workers;
			old_max = f->seq > old_max ? f->seq : old_max;
			continue;
		}
		if (!(f->flags & STORE_FLAG_BASE) || (ours++ && f->seq != seq))
			return 0;
		seq = f->seq;
	}
	if (ours == 0 || others == 0 || seq <= old_max)
		return 0;
	if (ours == d->workers) {
		sd_log(lg, LOG_T_NOTICE,
		       "Finishing a resharding of %s from %u to %u workers that a stop cut short: "
		       "removing the old logs",
		       d->path, other, d->workers);
		return drop_count(d, files, nfiles, other, err, errlen);
	}
	sd_log(lg, LOG_T_NOTICE,
	       "A resharding of %s from %u to %u workers was cut short before its new logs were "
	       "all in place: removing them and resharding again",
	       d->path, other, d->workers);
	return drop_count(d, files, nfiles, (uint16_t)d->workers, err, errlen);
}

int store_dir_recover(struct store_dir *d, store_home_fn home, struct log *lg,
                      struct store_chain *chains, char *err, size_t errlen)
{
	struct sd_file *files;
	unsigned nfiles, w;
	int e;

	memset(chains, 0, d->workers * sizeof(*chains));
	e = scan(d, lg, &files, &nfiles, err, errlen);
	if (e)
		return e;
	e = finish_reshard(d, lg, files, &nfiles, err, errlen);
	for (unsigned i = 1; e == 0 && i < nfiles; i++) {
		if (files[i].workers != files[0].workers) {
			char a[SD_NAME_MAX], b[SD_NAME_MAX];

			sd_name(d, a, files[0].worker, files[0].seq, "");
			sd_name(d, b, files[i].worker, files[i].seq, "");
			sd_err(err, errlen,
			       "%s: logs of two worker counts (%u in %s, %u in %s): remove the "
			       "stale "
			       "ones",
			       d->path, files[0].workers, a, files[i].workers, b);
			free(files);
			return STORE_E_FOREIGN;
		}
	}
	if (e) {
		free(files);
		return e;
	}
	if (nfiles > 0 && files[0].workers != d->workers) {
		e = sd_reshard(d, home, lg, files, nfiles, chains, err, errlen);
		free(files);
		return e;
	}
	for (w = 0; e == 0 && w < d->workers; w++) {
		unsigned first, n = sd_files_of(files, nfiles, w, &first);

		if (n == 0)
			e = new_base(d, lg, w, nfiles > 0, &chains[w], err, errlen);
		else
			e = sd_chain_recover(d, lg, w, (uint16_t)d->workers, files + first, n,
			                     &chains[w], err, errlen);
	}
	free(files);
	if (e)
		store_chains_free(chains, d->workers);
	return e;
}
