/*
 * The broker: configuration, log and the workers. Built once by main(); workers borrow it
 * read-only (the log's writes are whole lines in one write(2)).
 */
#ifndef STARLING_BROKER_H
#define STARLING_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"
#include "base/log.h"

struct worker;

struct broker {
	struct config cfg;      /* effective configuration */
	struct log log;         /* log destinations */
	uint32_t max_packet;    /* largest packet accepted from a client, header included */
	uint32_t max_payload;   /* largest PUBLISH payload accepted (message_size_limit) */
	uint16_t inflight_max;  /* outbound QoS 1/2 window per client */
	uint64_t start_s;       /* wall-clock start time, for $SYS uptime */
	struct worker *workers; /* nworkers workers */
	unsigned nworkers;      /* one for now; one per core later */
	int listen_fds[2 * CONFIG_LISTENERS_MAX]; /* bound sockets (IPv4 and IPv6 per listener) */
	uint16_t listen_ports[2 * CONFIG_LISTENERS_MAX]; /* their ports */
	unsigned nlisten;                                /* entries used */
	int sig_fd;                                      /* signalfd for SIGINT/SIGTERM */
	bool pid_file_written;                           /* remove cfg.pid_file at exit */
	uint64_t instance_salt; /* random bits for generated client identifiers */
};

/* Validates the configuration, opens the log, binds the listeners, blocks signals. */
int broker_init(struct broker *b, const struct config *cfg);

/* Runs the broker until SIGINT/SIGTERM; returns the process exit status. */
int broker_run(struct broker *b);

/* Releases everything broker_init acquired. */
void broker_fini(struct broker *b);

#endif
