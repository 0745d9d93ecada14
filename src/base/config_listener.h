/*
 * The per-listener options of mosquitto.conf(5) beyond `listener`, `protocol` and the TLS
 * ones: mount_point, bind_interface, socket_domain, max_connections, http_dir, psk_hint, and
 * the security option psk_file. config.c's option table sends their lines here; they fill
 * struct config_listener_opts (and config_auth.psk_file) as Mosquitto 2.0 reads them.
 */
#ifndef STARLING_CONFIG_LISTENER_H
#define STARLING_CONFIG_LISTENER_H

#include <stddef.h>

#include "config.h"

/* One option line, split by config.c; everything borrowed for the call. */
struct config_line {
	const char *name;     /* the option */
	const char *const *v; /* its values, split at blanks */
	unsigned n;           /* entries in v */
	const char *rest;     /* everything after the name, outer blanks trimmed */
	const char *path;     /* the file, for messages */
	unsigned line;        /* its line number */
	char *err;            /* where "FILE:LINE: reason" goes */
	size_t errlen;        /* its size */
};

/* Parses ln (one of the options above) into cfg. ST_OK, or ST_ERR_CONFIG with err filled. */
int config_listener_option(struct config *cfg, const struct config_line *ln);

#endif
