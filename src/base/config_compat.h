/*
 * Mosquitto 2.0 options that Starling's own option table (config.c) lacks: which are refused
 * and why, which are accepted with a notice, and Mosquitto's other names of options Starling
 * has. Used by config.c only; config_compat.c holds the list.
 */
#ifndef STARLING_CONFIG_COMPAT_H
#define STARLING_CONFIG_COMPAT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

enum config_compat {
	CONFIG_COMPAT_UNKNOWN,  /* not a Mosquitto option either: "unknown option" */
	CONFIG_COMPAT_REFUSED,  /* refused (or a bad value): msg says why */
	CONFIG_COMPAT_ACCEPTED, /* accepted; msg holds a notice for the log, or is empty */
	CONFIG_COMPAT_ALIAS,    /* parse the line as option *alias; msg holds a notice */
};

/*
 * Classifies option `name` with its n values v (borrowed). msg[0..msglen) receives the reason
 * or the notice, starting with the option's name, without file and line; *alias is set for
 * CONFIG_COMPAT_ALIAS (a static string), NULL otherwise.
 */
enum config_compat config_compat_check(const char *name, const char *const *v, unsigned n,
                                       const char **alias, char *msg, size_t msglen);

/* Keeps "PATH:LINE: msg" in cfg for the log at start-up (past CONFIG_NOTICES_MAX: counted). */
void config_notice(struct config *cfg, const char *path, unsigned line, const char *msg);

#endif
