/*
 * starling-bench's command line: the scenario and every knob of a run, parsed into one struct
 * that the rest of the tool only reads. Defaults make each scenario the canonical one of the
 * comparison (fanout 1 to 50, fanin 50 to 1, pairs 50, wildcard 100k filters, 10k idle
 * connections); durations are given in seconds and kept in milliseconds.
 */
#ifndef STARLING_BENCH_OPTS_H
#define STARLING_BENCH_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum bench_scenario {
	BENCH_FANOUT = 0,      /* P publishers, T topics, S subscribers spread over the topics */
	BENCH_FANIN = 1,       /* P publishers on their own topics, S subscribers on a wildcard */
	BENCH_PAIRS = 2,       /* N publishers, each with its own subscriber on its own topic */
	BENCH_WILDCARD = 3,    /* S subscribers holding many exact, '+' and '#' filters */
	BENCH_CONNECTIONS = 4, /* N idle connections, opened at a rate and held */
};

/* Payload layout: 8 bytes send time (ns), 4 bytes publisher id, 4 bytes sequence. */
#define BENCH_PAYLOAD_MIN 16u
#define BENCH_PAYLOAD_MAX (1u << 20)
#define BENCH_THREADS_MAX 64u /* a thread's wake-ups are a bit in a uint64_t (flow.c) */
/* --persistent with MQTT 5: the Session Expiry Interval of every CONNECT (one hour). */
#define BENCH_SESSION_EXPIRY_S 3600u
/* --persistent: the bound on each pass of clean connects, before and after the run. */
#define BENCH_CLEAN_BUDGET_MS 30000u

struct bench_opts {
	enum bench_scenario scenario; /* what to run */
	const char *host;             /* broker address, numeric IPv4 or IPv6 */
	uint16_t port;                /* broker port */
	uint32_t publishers;          /* publishing connections */
	uint32_t subscribers;         /* subscribing connections */
	uint32_t clients;             /* pairs: pairs; connections: connections */
	uint32_t topics;              /* fanout: topics; wildcard: topics per publisher */
	uint32_t subscriptions;       /* wildcard: filters over all subscribers */
	uint32_t ext_publishers;      /* publisher ids 0..N-1 come from outside (a source) */
	uint8_t qos;                  /* QoS of publishes and subscriptions */
	uint8_t level;                /* MQTT protocol level: 4 (3.1.1) or 5 */
	bool nodelay;                 /* TCP_NODELAY on every socket */
	bool json_only;               /* print only the JSON line */
	uint32_t payload_bytes;       /* payload size, at least BENCH_PAYLOAD_MIN */
	double rate_total;            /* messages/s over all publishers, 0: see rate_per_client */
	double rate_per_client;       /* messages/s per publisher, 0 with rate_total 0: no limit */
	uint64_t duration_ms;         /* measurement window (connections: hold time) */
	uint64_t warmup_ms;           /* publishing before the window opens */
	uint64_t drain_ms;            /* wait for in-flight messages after the window closes */
	uint64_t setup_timeout_ms;    /* bound on connecting and subscribing */
	uint32_t connect_rate;        /* new connections per second, 0: as fast as allowed */
	uint32_t connect_parallel;    /* handshakes in progress at once */
	uint32_t inflight_max;    /* QoS 1/2 publishes awaiting acknowledgement, per publisher */
	uint32_t batch_bytes;     /* most bytes of PUBLISH packets per send, per publisher */
	uint32_t tick_us;         /* loop wake-up period when rate-limited */
	uint32_t outstanding_max; /* no rate: deliveries in flight over all publishers */
	uint32_t queue_max;       /* no rate: deliveries in flight to one subscriber */
	uint64_t lost_after_ms;   /* an outstanding message older than this is presumed lost */
	uint32_t coalesce_us;     /* wait up to this long for completions to accumulate */
	uint16_t keepalive_s;     /* CONNECT keep alive; PINGREQ every half of it */
	pid_t broker_pid;         /* read CPU time and RSS of this process, 0: none */
	uint32_t threads;         /* io_uring loops, each with its share of the clients */
	const char *id_prefix;    /* client identifier prefix */
	const char *username;     /* CONNECT user name of every connection, or NULL */
	const char *password;     /* CONNECT password, or NULL */
	const char *label;        /* free text copied into the JSON line */
	const char *share;        /* fanout, fanin: subscribers join $share/<share>/FILTER */
	bool persistent;          /* --persistent: sessions outlive their connections (session.c) */
	bool tls;                 /* --tls: connect over TLS */
	const char *cafile;       /* --cafile: verify the broker with these CAs (implies --tls) */
	const char *capath;       /* --capath: the same from a directory */
	const char *certfile;     /* --cert: client certificate */
	const char *keyfile;      /* --key: its key */
	bool insecure;            /* --insecure: no check of the certificate's address */
	uint8_t tls_version;      /* --tls-version: lowest, 12 or 13 (0: 1.2) */
	bool ws;                  /* --ws: MQTT over WebSockets (wss with --tls) */
};

/*
 * Parses argv into *o. Returns 0, 1 when --help was printed (exit 0), or -1 after printing the
 * reason for a usage error (exit 2).
 */
int bench_opts_parse(struct bench_opts *o, int argc, char **argv);

const char *bench_scenario_name(enum bench_scenario s);

/* Total run time the options allow, setup to teardown: the basis of the global deadline. */
uint64_t bench_opts_budget_ms(const struct bench_opts *o);

#endif
