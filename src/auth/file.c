/*
 * Whole-file reads for the auth layer. A file is read with read(2) into a buffer that doubles,
 * so a file that grows while it is read (an editor writing it) is still bounded.
 */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "starling/error.h"

int auth_read_file(const char *path, char **out, size_t *len_out, char *err, size_t errlen)
{
	size_t cap = 4096, len = 0;
	char *buf = NULL;
	int fd, rc = ST_ERR_CONFIG;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return ST_ERR_CONFIG;
	}
	for (;;) {
		ssize_t n;

		if (buf == NULL || len + 1 >= cap) {
			char *nbuf;

			if (buf != NULL)
				cap *= 2;
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
		if (len > AUTH_FILE_MAX_BYTES) {
			snprintf(err, errlen, "%s: larger than %u bytes", path,
			         AUTH_FILE_MAX_BYTES);
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

const char *auth_next_line(const char **p, const char *end, size_t *n)
{
	const char *s = *p, *nl;

	if (s >= end)
		return NULL;
	nl = memchr(s, '\n', (size_t)(end - s));
	*p = nl ? nl + 1 : end;
	*n = (size_t)((nl ? nl : end) - s);
	if (*n > 0 && s[*n - 1] == '\r')
		(*n)--;
	return s;
}
