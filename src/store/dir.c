/*
 * The persistence directory's files (dir.h): opening and locking the directory, file names,
 * whole-file reads, and segments written through a .tmp file that is synced, then renamed into
 * place, then the directory synced, so a segment name never holds a half-written header.
 * Blocking calls, start-up and compaction thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirio.h"

void sd_name(const struct store_dir *d, char *out, unsigned w, uint64_t seq, const char *suffix)
{
	snprintf(out, SD_NAME_MAX, "%s.%u.%016" PRIx64 "%s", d->name, w, seq, suffix);
}

void sd_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void sd_log(struct log *lg, uint32_t type, const char *fmt, ...)
{
	va_list ap;

	if (!lg)
		return;
	va_start(ap, fmt);
	log_vmsg(lg, type, fmt, ap);
	va_end(ap);
}

bool sd_keep_home(void *ctx, const uint8_t *client, size_t len)
{
	const struct sd_home *h = ctx;

	/* A home out of range would put a session in no log at all. */
	return h->home(h->n, client, len) % h->n == h->w;
}

/* Reads the lock holder's pid (written after locking) for the refusal message; 0 if none. */
static long lock_holder(int dfd, const char *lock_name)
{
	char buf[32];
	ssize_t n;
	int fd = openat(dfd, lock_name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

static int take_lock(struct store_dir *d, char *err, size_t errlen)
{
	char lock_name[SD_NAME_MAX], pid[32];
	int n, e;

	snprintf(lock_name, sizeof(lock_name), "%s.lock", d->name);
	d->lock_fd = openat(d->dfd, lock_name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0) {
		e = errno;
		sd_err(err, errlen, "%s/%s: %s", d->path, lock_name, strerror(e));
		return -e;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		long holder;

		e = errno;
		if (e != EWOULDBLOCK) {
			sd_err(err, errlen, "%s/%s: flock: %s", d->path, lock_name, strerror(e));
			return -e;
		}
		holder = lock_holder(d->dfd, lock_name);
		sd_err(err, errlen,
		       "%s/%s is locked by another process (pid %ld): another broker is running "
		       "with this persistence directory",
		       d->path, lock_name, holder);
		return -e;
	}
	/* The holder's pid, for the message a second broker prints; without it only that
	 * message lacks the pid. */
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	(void)(ftruncate(d->lock_fd, 0) == 0 && pwrite(d->lock_fd, pid, (size_t)n, 0) == n);
	return 0;
}

int store_dir_open(struct store_dir *d, const char *path, const char *name, unsigned workers,
                   char *err, size_t errlen)
{
	int e;

	memset(d, 0, sizeof(*d));
	d->dfd = d->lock_fd = -1;
	if (!name[0] || strchr(name, '/') || strlen(name) > SD_PREFIX_MAX || !strcmp(name, ".") ||
	    !strcmp(name, "..")) {
		sd_err(err, errlen, "persistence file name \"%s\": not a plain file name", name);
		return -EINVAL;
	}
	if (workers == 0 || workers > UINT16_MAX) {
		sd_err(err, errlen, "persistence: %u workers out of range", workers);
		return -EINVAL;
	}
	d->path = strdup(path);
	d->name = strdup(name);
	d->workers = workers;
	if (!d->path || !d->name) {
		e = ENOMEM;
		sd_err(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		e = errno;
		sd_err(err, errlen, "%s: mkdir: %s", path, strerror(e));
		goto fail;
	}
	d->dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dfd < 0) {
		e = errno;
		sd_err(err, errlen, "%s: %s", path, strerror(e));
		goto fail;
	}
	e = -take_lock(d, err, errlen);
	if (e)
		goto fail;
	return 0;
fail:
	store_dir_close(d);
	return -e;
}

void store_dir_close(struct store_dir *d)
{
	if (d->lock_fd >= 0)
		close(d->lock_fd); /* releases the flock */
	if (d->dfd >= 0)
		close(d->dfd);
	free(d->path);
	free(d->name);
	d->path = d->name = NULL;
	d->dfd = d->lock_fd = -1;
}

/*
 * Asks for transparent huge pages under a large read buffer: read(2) into fresh memory takes
 * a page fault per 4 KiB page, which under a hypervisor costs more than the copy itself
 * (a 378 MB log: most of the recovery time). Advice only; a refusal changes nothing.
 */
static void huge_pages(void *p, size_t len)
{
	const uintptr_t huge = (uintptr_t)2 << 20;
	uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1);
	uintptr_t e = ((uintptr_t)p + len) & ~(huge - 1);

	if (e > a)
		(void)madvise((void *)a, e - a, MADV_HUGEPAGE);
}

int sd_read_all(const struct store_dir *d, const char *name, uint8_t **data, size_t *len)
{
	struct stat sb;
	size_t got = 0;
	uint8_t *p;
	int fd = openat(d->dfd, name, O_RDONLY | O_CLOEXEC), e;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) != 0) {
		e = errno;
		close(fd);
		return -e;
	}
	p = malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1);
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	huge_pages(p, (size_t)sb.st_size);
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, p + got, (size_t)sb.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* A file that shrank under us is as unreadable as one that failed. */
			e = n < 0 ? errno : EIO;
			free(p);
			close(fd);
			return -e;
		}
		got += (size_t)n;
	}
	close(fd);
	*data = p;
	*len = got;
	return 0;
}

int sd_sync_dir(const struct store_dir *d, char *err, size_t errlen)
{
	if (fsync(d->dfd) != 0) {
		int e = errno;

		sd_err(err, errlen, "%s: fsync: %s", d->path, strerror(e));
		return -e;
	}
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

struct tmp_out {
	int fd;
	uint64_t bytes;
};

static int flush_tmp(void *fctx, struct store_buf *b)
{
	struct tmp_out *o = fctx;
	int e = write_all(o->fd, b->data, b->len);

	if (e)
		return e;
	o->bytes += b->len;
	b->len = 0;
	return 0;
}

int sd_write_tmp(const struct store_dir *d, unsigned w, uint16_t workers, uint64_t seq,
                 uint32_t flags, const struct store_state *st,
                 bool (*keep)(void *ctx, const uint8_t *client, size_t len), void *ctx,
                 bool retained, int *fd_keep, uint64_t *bytes, uint64_t *records, char *err,
                 size_t errlen)
{
	/* Whatever the broker appends later comes in commits; the state written here is one. */
	struct store_header h = {.flags = flags | STORE_FLAG_COMMITS | STORE_FLAGS_RECORDS,
	                         .worker = (uint16_t)w,
	                         .workers = workers,
	                         .segment = seq};
	const struct store_rec commit = {.type = STORE_REC_COMMIT};
	struct tmp_out o = {.fd = -1};
	struct store_buf b = {0};
	char name[SD_NAME_MAX];
	uint64_t n = 0;
	int e;

	sd_name(d, name, w, seq, ".tmp");
	o.fd = openat(d->dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (o.fd < 0) {
		e = -errno;
		sd_err(err, errlen, "%s/%s: %s", d->path, name, strerror(-e));
		return e;
	}
	e = store_header_encode(&b, &h);
	if (e == 0 && st)
		e = store_state_write(st, &b, keep, ctx, retained, flush_tmp, &o, &n);
	if (e == 0 && st)
		e = store_rec_encode(&b, &commit);
	if (e == 0)
		e = flush_tmp(&o, &b);
	if (e == STORE_E_NOMEM || e == STORE_E_FIELD)
		e = e == STORE_E_NOMEM ? -ENOMEM : -EINVAL;
	if (e == 0 && fsync(o.fd) != 0)
		e = -errno;
	store_buf_free(&b);
	if (e) {
		sd_err(err, errlen, "%s/%s: writing: %s", d->path, name, strerror(-e));
		close(o.fd);
		unlinkat(d->dfd, name, 0);
		return e;
	}
	if (fd_keep)
		*fd_keep = o.fd;
	else
		close(o.fd);
	if (bytes)
		*bytes = o.bytes;
	if (records)
		*records = n;
	return 0;
}

int sd_commit(const struct store_dir *d, unsigned w, uint64_t seq, char *err, size_t errlen)
{
	char from[SD_NAME_MAX], to[SD_NAME_MAX];

	sd_name(d, from, w, seq, ".tmp");
	sd_name(d, to, w, seq, "");
	if (renameat(d->dfd, from, d->dfd, to) != 0) {
		int e = errno;

		sd_err(err, errlen, "%s/%s: rename to %s: %s", d->path, from, to, strerror(e));
		return -e;
	}
	return 0;
}

/* pwrite of all len bytes (a short write of a regular file: the disk is full). */
static int write_full(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t k = pwrite(fd, buf, len, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -ENOSPC;
		buf += k;
		len -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/*
 * Sets `flags` in the header of segment `name` if it lacks them (its first sector rewritten in
 * place, then synced): a segment from an earlier build is about to get records of this one.
 * Through the page cache, before the descriptor for direct writes is opened.
 */
static int seg_add_flags(const struct store_dir *d, const char *name, uint32_t flags)
{
	uint8_t buf[STORE_HEADER_LEN];
	struct store_header h;
	struct store_buf b = {0};
	size_t hl;
	ssize_t n;
	int fd = openat(d->dfd, name, O_RDWR | O_CLOEXEC), e = 0;

	if (fd < 0)
		return -errno;
	n = pread(fd, buf, sizeof(buf), 0);
	if (n < 0 || store_header_decode(buf, (size_t)n, &h, &hl) != 0) {
		e = n < 0 ? -errno : -EINVAL;
	} else if ((h.flags & flags) != flags) {
		h.flags |= flags;
		if (store_header_encode(&b, &h) != 0)
			e = -ENOMEM;
		else if ((e = write_full(fd, b.data, STORE_HEADER_LEN, 0)) == 0 &&
		         fdatasync(fd) != 0)
			e = -errno;
		store_buf_free(&b);
	}
	close(fd);
	return e;
}

int store_dir_open_append(struct store_dir *d, unsigned worker, uint64_t seq, bool direct)
{
	char name[SD_NAME_MAX];
	int fd = -1, e;

	sd_name(d, name, worker, seq, "");
	e = seg_add_flags(d, name, STORE_FLAGS_RECORDS);
	if (e)
		return e;
	if (direct)
		fd = openat(d->dfd, name, O_RDWR | O_CLOEXEC | O_DIRECT);
	/* EINVAL: a file system without direct I/O (tmpfs before 6.6, some FUSE ones). */
	if (fd < 0 && (!direct || errno == EINVAL))
		fd = openat(d->dfd, name, O_RDWR | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

unsigned store_dio_align(int fd)
{
	struct statx sx;
	int fl = fcntl(fd, F_GETFL);
	unsigned a;

	if (fl < 0 || !(fl & O_DIRECT))
		return 0;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) != 0 ||
	    !(sx.stx_mask & STATX_DIOALIGN) || sx.stx_dio_offset_align == 0)
		return 0;
	a = sx.stx_dio_offset_align > sx.stx_dio_mem_align ? sx.stx_dio_offset_align
	                                                   : sx.stx_dio_mem_align;
	/* Whole pages: a device with 4 KiB physical sectors rewrites a partial one itself. */
	if (a < 4096)
		a = 4096;
	return a & (a - 1) ? 0 : a;
}

int store_seg_pad(int fd, uint64_t off, unsigned align, uint64_t *start)
{
	uint64_t blk = off & ~(uint64_t)(align - 1);
	size_t cur = (size_t)(off - blk), end;
	struct store_header h;
	struct store_buf b = {0};
	uint8_t *buf = aligned_alloc(align, 2 * (size_t)align);
	size_t hl;
	ssize_t n;
	int e = 0;

	if (!buf)
		return -ENOMEM;
	memset(buf, 0, align);
	n = pread(fd, buf, align, 0);
	if (n < 0 || store_header_decode(buf, (size_t)n, &h, &hl) != 0 || hl != STORE_HEADER_LEN) {
		e = n < 0 ? -errno : -EINVAL;
		goto out;
	}
	if (!(h.flags & STORE_FLAG_PADDED)) {
		/* The header's first sector is rewritten whole or not at all. */
		h.flags |= STORE_FLAG_PADDED;
		if (store_header_encode(&b, &h) != 0) {
			e = -ENOMEM;
			goto out;
		}
		memcpy(buf, b.data, STORE_HEADER_LEN);
		b.len = 0;
		e = write_full(fd, buf, align, 0);
		if (e)
			goto out;
	}
	if (cur) {
		/* An empty commit, padded to the block's end: the next one starts on a boundary. */
		if (blk != 0) {
			memset(buf, 0, align);
			n = pread(fd, buf, align, (off_t)blk);
			if (n < 0 || (size_t)n < cur) {
				e = n < 0 ? -errno : -EIO;
				goto out;
			}
		}
		end = (cur + STORE_PAD_MIN + STORE_COMMIT_LEN + align - 1) & ~(size_t)(align - 1);
		memset(buf + cur, 0, end - cur);
		if (store_pad_encode(&b, end - cur - STORE_COMMIT_LEN) != 0 ||
		    store_rec_encode(&b, &(struct store_rec){.type = STORE_REC_COMMIT}) != 0) {
			e = -ENOMEM;
			goto out;
		}
		memcpy(buf + cur, b.data, b.len);
		e = write_full(fd, buf, end, blk);
		if (e)
			goto out;
		blk += end;
	} else {
		blk = off;
	}
	if (fdatasync(fd) != 0)
		e = -errno;
	*start = blk;
out:
	store_buf_free(&b);
	free(buf);
	return e;
}

int store_zero_ahead(int fd, uint64_t from, uint64_t to)
{
	static const uint8_t zeros[1 << 16];

	while (from < to) {
		size_t n = to - from < sizeof(zeros) ? (size_t)(to - from) : sizeof(zeros);
		ssize_t k = pwrite(fd, zeros, n, (off_t)from);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -ENOSPC;
		from += (uint64_t)k;
	}
	if (fdatasync(fd) != 0)
		return -errno;
	/* Out of the page cache: a direct write over a cached page is no longer direct (the
	 * ring hands it to a kernel thread to drop the page first). */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	return 0;
}

int store_dir_create_segment(struct store_dir *d, unsigned worker, uint64_t seq, bool direct,
                             uint64_t zeros, char *err, size_t errlen)
{
	char name[SD_NAME_MAX];
	int fd = -1, e;

	if (worker >= d->workers) {
		sd_err(err, errlen, "create segment: worker %u of %u", worker, d->workers);
		return -EINVAL;
	}
	sd_name(d, name, worker, seq, "");
	/* Never over an existing segment: that would be a broker bug losing records. */
	if (faccessat(d->dfd, name, F_OK, 0) == 0) {
		sd_err(err, errlen, "%s/%s: exists already", d->path, name);
		return -EEXIST;
	}
	e = sd_write_tmp(d, worker, (uint16_t)d->workers, seq, direct ? STORE_FLAG_PADDED : 0, NULL,
	                 NULL, NULL, false, &fd, NULL, NULL, err, errlen);
	if (e)
		return e;
	/* Zeros are a clean end (segment.h): a crash before the rename leaves a valid .tmp. */
	if (zeros > STORE_HEADER_LEN && store_zero_ahead(fd, STORE_HEADER_LEN, zeros) != 0)
		if (ftruncate(fd, STORE_HEADER_LEN) != 0) /* a full disk: appends extend the file */
			zeros = 0;                        /* (the zeros written are harmless) */
	close(fd);
	e = sd_commit(d, worker, seq, err, errlen);
	if (e) {
		char tmp[SD_NAME_MAX];

		sd_name(d, tmp, worker, seq, ".tmp");
		unlinkat(d->dfd, tmp, 0);
		return e;
	}
	e = sd_sync_dir(d, err, errlen);
	if (e == 0) {
		fd = store_dir_open_append(d, worker, seq, direct);
		if (fd >= 0)
			return fd;
		e = fd;
		sd_err(err, errlen, "%s/%s: %s", d->path, name, strerror(-e));
	}
	unlinkat(d->dfd, name, 0);
	return e;
}
