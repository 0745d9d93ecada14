/*
 * Internal to the persistence directory (dir.c, recover.c, compact.c): file names, whole-file
 * reads, and writing a segment through a .tmp file. Every function returns 0 or a negative
 * errno (or store_err) and, where it takes err, says in it which file and why.
 */
#ifndef STARLING_STORE_DIRIO_H
#define STARLING_STORE_DIRIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/log.h"
#include "dir.h"

/* Room for "NAME.<w>.<16 hex>.dropped-<time>-<n>" with NAME up to SD_PREFIX_MAX bytes. */
#define SD_PREFIX_MAX 200
#define SD_NAME_MAX   (SD_PREFIX_MAX + 80)

/* One segment file found in the directory, its header read. */
struct sd_file {
	unsigned worker;  /* from its name (and its header, which must agree) */
	uint64_t seq;     /* likewise */
	uint16_t workers; /* the worker count in its header */
	uint32_t flags;   /* its header's flags (STORE_FLAG_BASE) */
};

/* The sessions of one worker: home(n, client) == w. */
struct sd_home {
	store_home_fn home;
	unsigned n, w;
};

bool sd_keep_home(void *ctx, const uint8_t *client, size_t len);

/* NAME.<w>.<seq><suffix> into out (SD_NAME_MAX bytes). */
void sd_name(const struct store_dir *d, char *out, unsigned w, uint64_t seq, const char *suffix);

/* snprintf into err (errlen bytes) when err is not NULL. */
void sd_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* log_msg when lg is not NULL (tests may pass none). */
void sd_log(struct log *lg, uint32_t type, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Reads the whole file `name` of the directory with read(2); *data is malloc()ed (owned). */
int sd_read_all(const struct store_dir *d, const char *name, uint8_t **data, size_t *len);

/* fsync(2) of the directory: makes creations, renames and unlinks durable. */
int sd_sync_dir(const struct store_dir *d, char *err, size_t errlen);

/*
 * Writes NAME.<w>.<seq>.tmp: a header (flags, workers) then, if st is not NULL, the state's
 * records (keep, ctx, retained as store_state_write), and fsyncs it. On success the file is
 * left as .tmp for sd_commit; *fd_keep (if not NULL) gets its descriptor (O_WRONLY), else it
 * is closed; *bytes and *records (if not NULL) what was written. On failure the .tmp is
 * removed.
 */
int sd_write_tmp(const struct store_dir *d, unsigned w, uint16_t workers, uint64_t seq,
                 uint32_t flags, const struct store_state *st,
                 bool (*keep)(void *ctx, const uint8_t *client, size_t len), void *ctx,
                 bool retained, int *fd_keep, uint64_t *bytes, uint64_t *records, char *err,
                 size_t errlen);

/* Renames NAME.<w>.<seq>.tmp over NAME.<w>.<seq> (not synced: sd_sync_dir). */
int sd_commit(const struct store_dir *d, unsigned w, uint64_t seq, char *err, size_t errlen);

/*
 * Recovers one worker's chain from its files (sorted by seq, all of count `workers`): the
 * rules of store_dir_recover (superseded segments unlinked, torn tail truncated, what follows
 * damage or a gap moved aside). *out gets the chain. nfiles >= 1.
 */
int sd_chain_recover(const struct store_dir *d, struct log *lg, unsigned w, uint16_t workers,
                     const struct sd_file *files, unsigned nfiles, struct store_chain *out,
                     char *err, size_t errlen);

/* Resharding (compact.c): the files are all of another count; chains as store_dir_recover. */
int sd_reshard(struct store_dir *d, store_home_fn home, struct log *lg, struct sd_file *files,
               unsigned nfiles, struct store_chain *chains, char *err, size_t errlen);

/* Files of worker w in files[0 .. n) (sorted by worker then seq): *first and the count. */
unsigned sd_files_of(const struct sd_file *files, unsigned n, unsigned w, unsigned *first);

#endif
