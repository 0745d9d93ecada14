/*
 * The cluster options (issue 14): a Starling node joins others through NATS when
 * cluster_nats_url is given; without it nothing else here has an effect.
 *
 * cluster_nats_url nats://HOST:PORT[,nats://HOST:PORT...] (tls:// for TLS; the list is what
 * the NATS client reconnects through), cluster_nats_user and cluster_nats_password (both or
 * neither), cluster_nats_cafile (TLS with these CAs), cluster_nats_certfile and
 * cluster_nats_keyfile (a client certificate: both or neither), cluster_name (the subject
 * prefix, default "starling"; its syntax is the cluster layer's to check), cluster_node_id (this
 * node's name in the cluster; default HOSTNAME:PORT of the first listener, set at start-up).
 */
#ifndef STARLING_CONFIG_CLUSTER_H
#define STARLING_CONFIG_CLUSTER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define CONFIG_CLUSTER_URLS_MAX 16 /* servers in cluster_nats_url */

struct config_cluster {
	char urls[2048];         /* cluster_nats_url as given; empty: no cluster */
	unsigned nurls;          /* servers in it */
	char user[256];          /* cluster_nats_user; empty: none */
	char password[256];      /* cluster_nats_password */
	char cafile[PATH_MAX];   /* cluster_nats_cafile; empty: none */
	char certfile[PATH_MAX]; /* cluster_nats_certfile; empty: none */
	char keyfile[PATH_MAX];  /* cluster_nats_keyfile */
	char name[65];           /* cluster_name; empty: the default */
	char node_id[256];       /* cluster_node_id; empty: HOSTNAME:PORT at start-up */
};

struct config;

#define CONFIG_CLUSTER_NOT_MINE 1

/*
 * Parses option `name` with values v[0..n) if it is a cluster option. Returns
 * CONFIG_CLUSTER_NOT_MINE when it is not, ST_OK, or ST_ERR_CONFIG with "FILE:LINE: reason".
 */
int config_cluster_parse(struct config *cfg, const char *name, const char *const *v, unsigned n,
                         const char *path, unsigned line, char *err, size_t errlen);

/* Once every file is read: the options that need each other. ST_OK or ST_ERR_CONFIG. */
int config_cluster_finish(struct config *cfg, char *err, size_t errlen);

/*
 * Copies the i-th URL of the list (0 <= i < nurls) into buf[0..cap) with a NUL; returns its
 * length or -1 if it does not fit.
 */
int config_cluster_url(const struct config_cluster *c, unsigned i, char *buf, size_t cap);

#endif
