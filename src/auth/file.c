/*
 * Whole-file reads for the auth layer (base/readfile.c, with the auth files' bound) and the
 * line cutting of password and ACL files.
 */
#include "file.h"

#include <string.h>

#include "base/readfile.h"

int auth_read_file(const char *path, char **out, size_t *len_out, char *err, size_t errlen)
{
	return base_read_file(path, AUTH_FILE_MAX_BYTES, out, len_out, err, errlen);
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
