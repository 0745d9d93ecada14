/*
 * Reading a whole configuration-like file (the configuration, password and ACL files) into
 * memory, bounded: such files are read at start-up and on SIGHUP only, and one past the bound
 * is refused rather than cut.
 */
#ifndef STARLING_BASE_READFILE_H
#define STARLING_BASE_READFILE_H

#include <stddef.h>

/*
 * Reads path into a new NUL-terminated buffer (*out, the caller frees it; *len without the
 * NUL), at most max bytes. Returns 0, or ST_ERR_CONFIG / ST_ERR_NOMEM with "PATH: reason" in
 * err.
 */
int base_read_file(const char *path, size_t max, char **out, size_t *len, char *err, size_t errlen);

#endif
