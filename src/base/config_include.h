/*
 * `include_dir DIR`: the *.conf files of a directory, read in Mosquitto 2.0's order as if
 * their lines stood where the option does. Used by config.c only.
 */
#ifndef STARLING_CONFIG_INCLUDE_H
#define STARLING_CONFIG_INCLUDE_H

#include <stddef.h>

#include "config.h"

#define CONFIG_INCLUDE_FILES_MAX 1024 /* *.conf files in one include_dir at most */

/*
 * Loads every *.conf file of dir (borrowed) into cfg, in config_include_cmp() order. `path`
 * and `line` are where the include_dir line stands, for errors about the directory itself;
 * an error inside an included file names that file and line, then "(included from PATH:LINE)".
 * Returns ST_OK, or ST_ERR_CONFIG with err filled. Only the main file may include: the line in
 * an included file is an error (Mosquitto ignores it there without a word).
 */
int config_include_dir(struct config *cfg, const char *dir, const char *path, unsigned line,
                       char *err, size_t errlen);

/*
 * mosquitto.conf(5)'s order of included files: letters compared case-insensitively, and of
 * two names that differ only in the case of a letter, the upper case first (A.conf before
 * a.conf before B.conf); other bytes by value, with letters compared as their upper case.
 * Returns <0, 0 or >0 as strcmp.
 */
int config_include_cmp(const char *a, const char *b);

/* Whether `name` is one an include_dir loads: ends in ".conf", with something before it. */
bool config_include_wanted(const char *name);

#endif
