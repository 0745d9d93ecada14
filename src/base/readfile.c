/*
 * Whole-file reads with read(2) into a buffer that doubles, so that a file that grows while it
 * is read (an editor writing it) is still bounded.
 */
#include "readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "starling/error.h"

int base_read_file(const char *path, size_t max, char **out, size_t *len_out, char *err,
                   size_t errlen)
{
	size_t cap = 4096, len = 0;
	char *buf = NULL, *nbuf;
	int fd, rc = ST_ERR_CONFIG;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return ST_ERR_CONFIG;
	}
	/* The buffer grows to one byte past the bound (plus the NUL), so an oversized file is
	 * seen as such rather than cut. */
	for (;;) {
		ssize_t n;

		if (buf == NULL || len + 1 >= cap) {
			if (buf != NULL)
				cap *= 2;
			if (cap > max + 2)
				cap = max + 2;
			nbuf = realloc(buf, cap);
			if (nbuf == NULL) {
				snprintf(err, errlen, "%s: out of memory", path);
				rc = ST_ERR_NOMEM;
				goto out;
			}
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
			goto out;
		}
	}
	buf[len] = '\0';
	*out = buf;
	*len_out = len;
	buf = NULL;
	rc = ST_OK;
out:
	free(buf);
	close(fd);
	return rc;
}
