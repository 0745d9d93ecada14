/*
 * Reading a whole password or ACL file into memory, bounded: these files are read at start-up
 * and on SIGHUP only, and a file past AUTH_FILE_MAX_BYTES is refused rather than cut.
 */
#ifndef STARLING_AUTH_FILE_H
#define STARLING_AUTH_FILE_H

#include <stddef.h>

#define AUTH_FILE_MAX_BYTES (256u << 20) /* a million users' lines fit several times */

/*
 * Reads path into a new NUL-terminated buffer (*out, the caller frees it; *len without the
 * NUL). Returns 0, or ST_ERR_CONFIG / ST_ERR_NOMEM with "PATH: reason" in err.
 */
int auth_read_file(const char *path, char **out, size_t *len, char *err, size_t errlen);

/*
 * Cuts the next line off [*p, end): returns its start and sets *n to its length without the
 * newline (and without a '\r' before it); advances *p past the newline. NULL at the end.
 */
const char *auth_next_line(const char **p, const char *end, size_t *n);

#endif
