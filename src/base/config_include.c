/*
 * `include_dir DIR` (mosquitto.conf(5)): every file of DIR whose name ends in ".conf" is read
 * as a configuration file, as if its lines stood where the include_dir line does, in
 * Mosquitto's order (config_include_cmp). Debian's package ends its mosquitto.conf with
 * `include_dir /etc/mosquitto/conf.d`, where every local setting lives, so this is what lets
 * `starlingd -c /etc/mosquitto/mosquitto.conf` start at all.
 *
 * What mosquitto 2.0.11 does, checked against it, and where Starling differs:
 * - Names: ".conf" at the end, case-sensitive (x.CONF is skipped), with at least one byte
 *   before it (a file named ".conf" is skipped; ".x.conf" is read). Symbolic links are
 *   followed; a dangling one, or a directory named x.conf, is an error.
 * - Order: letters compared as their upper case, the first position where two names differ
 *   deciding; there, an upper-case letter comes before its lower case (Ac.conf, ab.conf,
 *   B.conf); '_' after letters, '-' and digits before them; bytes above 0x7f after ASCII.
 * - A missing or unreadable directory is an error naming the include_dir line.
 * - include_dir inside an included file: Mosquitto ignores it without a word; Starling refuses
 *   it, naming the file and line, rather than silently drop settings.
 * - The directory must not hold the main file (mosquitto.conf(5)); Mosquitto reads it a second
 *   time and then fails on its duplicate listeners. Starling refuses with that rule named.
 * - "The listener above" is per file: in an included file before its first `listener` line,
 *   and in the main file after an include_dir that added listeners, mosquitto 2.0.11 gives
 *   listener options (max_connections, certfile...) to the default listener, not to the last
 *   listener read. Starling refuses such a line that would change another file's listener
 *   (config.c, parse_guarded) rather than silently apply it elsewhere.
 * - Later files win where options assign (max_connections in b.conf overrides a.conf's);
 *   options that add (listener, log_dest, log_type) add up, exactly as repeated lines of one
 *   file do.
 * Included files are read at start-up with the rest of the configuration: a SIGHUP reloads the
 * password, ACL and certificate files they name, as it does for the main file's.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config_include.h"
#include "starling/error.h"

static int upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

int config_include_cmp(const char *a, const char *b)
{
	const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;

	for (; *p != '\0' && *q != '\0'; p++, q++) {
		if (upper(*p) != upper(*q))
			return upper(*p) - upper(*q);
		if (*p != *q)
			return *p - *q; /* 'A' (0x41) before 'a' (0x61) */
	}
	return *p - *q;
}

bool config_include_wanted(const char *name)
{
	size_t len = strlen(name);

	return len > 5 && strcmp(name + len - 5, ".conf") == 0;
}

static int cmp_names(const void *x, const void *y)
{
	return config_include_cmp(*(const char *const *)x, *(const char *const *)y);
}

__attribute__((format(printf, 5, 6))) static int fail_at(char *err, size_t errlen, const char *path,
                                                         unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (errlen == 0)
		return ST_ERR_CONFIG;
	n = snprintf(err, errlen, "%s:%u: ", path, line);
	if (n < 0 || (size_t)n >= errlen)
		return ST_ERR_CONFIG;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return ST_ERR_CONFIG;
}

/* The names of dir's *.conf files, sorted; *names and each name are malloc'ed. */
static int list_dir(const char *dir, char ***names, size_t *count, char *err, size_t errlen,
                    const char *path, unsigned line)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0;
	int rc = ST_OK;

	*names = NULL;
	*count = 0;
	if (d == NULL)
		return fail_at(err, errlen, path, line, "include_dir: cannot open \"%s\": %s", dir,
		               strerror(errno));
	errno = 0;
	while (rc == ST_OK && (e = readdir(d)) != NULL) {
		char *copy;

		if (!config_include_wanted(e->d_name))
			continue;
		if (n == 0)
			v = calloc(CONFIG_INCLUDE_FILES_MAX, sizeof(*v));
		if (n == CONFIG_INCLUDE_FILES_MAX)
			rc = fail_at(err, errlen, path, line,
			             "include_dir: more than %d .conf files in \"%s\"",
			             CONFIG_INCLUDE_FILES_MAX, dir);
		else if (v == NULL || (copy = strdup(e->d_name)) == NULL)
			rc = fail_at(err, errlen, path, line, "include_dir: out of memory");
		else
			v[n++] = copy;
		errno = 0;
	}
	if (rc == ST_OK && errno != 0)
		rc = fail_at(err, errlen, path, line, "include_dir: cannot read \"%s\": %s", dir,
		             strerror(errno));
	closedir(d);
	if (rc != ST_OK) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return rc;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_names);
	*names = v;
	*count = n;
	return ST_OK;
}

/* Whether file is the main configuration file (the same inode, whatever the path). */
static bool is_main_file(const struct config *cfg, const char *file)
{
	struct stat a, b;

	return cfg->main_path != NULL && stat(cfg->main_path, &a) == 0 && stat(file, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Loads one included file; on error appends where it was included from. */
static int load_one(struct config *cfg, const char *file, const char *path, unsigned line,
                    char *err, size_t errlen)
{
	struct stat st;
	int rc;

	if (is_main_file(cfg, file))
		return fail_at(err, errlen, path, line,
		               "include_dir: %s is the main configuration file, which the "
		               "directory must not hold (mosquitto.conf(5))",
		               file);
	if (stat(file, &st) == 0 && S_ISDIR(st.st_mode))
		return fail_at(err, errlen, path, line, "include_dir: %s is a directory", file);
	/* Each file starts without a listener of its own, as in Mosquitto. */
	cfg->listener_foreign = cfg->listener_count > 0;
	cfg->include_depth++;
	rc = config_load_file(cfg, file, err, errlen);
	cfg->include_depth--;
	if (rc != ST_OK) {
		size_t used = strnlen(err, errlen);

		if (used + 1 < errlen)
			snprintf(err + used, errlen - used, " (included from %s:%u)", path, line);
	}
	return rc;
}

int config_include_dir(struct config *cfg, const char *dir, const char *path, unsigned line,
                       char *err, size_t errlen)
{
	char **names;
	size_t count;
	size_t dirlen = strlen(dir);
	bool slash = dirlen > 0 && dir[dirlen - 1] == '/';
	bool foreign_before;
	unsigned listeners_before;
	int rc;

	if (cfg->include_depth > 0)
		return fail_at(err, errlen, path, line,
		               "include_dir is only read in the main configuration file (Mosquitto "
		               "ignores it in an included file)");
	listeners_before = cfg->listener_count;
	foreign_before = cfg->listener_foreign;
	rc = list_dir(dir, &names, &count, err, errlen, path, line);
	for (size_t i = 0; i < count; i++) {
		char file[PATH_MAX];
		int n = snprintf(file, sizeof(file), "%s%s%s", dir, slash ? "" : "/", names[i]);

		if (rc == ST_OK && (n < 0 || (size_t)n >= sizeof(file)))
			rc = fail_at(err, errlen, path, line, "include_dir: path of %s too long",
			             names[i]);
		if (rc == ST_OK)
			rc = load_one(cfg, file, path, line, err, errlen);
		free(names[i]);
	}
	free(names);
	/* Back in the main file, its own last listener is "above" only if no file added one. */
	cfg->listener_foreign = foreign_before || cfg->listener_count != listeners_before;
	return rc;
}
