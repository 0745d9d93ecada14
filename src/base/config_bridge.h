/*
 * Bridges (issue 12): mosquitto.conf's `connection` blocks, each a client of another broker
 * that this broker drives. A `connection NAME` line opens a block; the bridge options after it
 * belong to that block until the next `connection` line (general options may come between
 * them and stay general, as in Mosquitto). A bridge option outside any block is an error
 * naming its file and line.
 *
 * Kept apart from config.c, as config_limits.c is: config_parse_line() hands a line whose
 * option it does not know to config_bridge_parse(), and config_load_file() calls
 * config_bridge_finish() once the main file and its includes are read. Bridges are few and
 * their topics repeatable, so they are allocated (struct config keeps a pointer, which its
 * shallow copies share); they live as long as the process, and config_bridges_free() is there
 * for a configuration read again (tests; SIGHUP does not re-read bridges, as in Mosquitto).
 */
#ifndef STARLING_CONFIG_BRIDGE_H
#define STARLING_CONFIG_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_BRIDGES_MAX      64    /* `connection` blocks */
#define CONFIG_BRIDGE_ADDRS_MAX 8     /* hosts of one `address`/`addresses` line */
#define CONFIG_BRIDGE_HOST_MAX  256   /* a host name or address and its NUL */
#define CONFIG_BRIDGE_ID_MAX    65536 /* bound of client ids, user names, passwords (MQTT) */
#define CONFIG_BRIDGE_PATH_MAX  4096

enum config_bridge_dir {
	CONFIG_BRIDGE_OUT = 1,  /* local -> remote (the default) */
	CONFIG_BRIDGE_IN = 2,   /* remote -> local */
	CONFIG_BRIDGE_BOTH = 3, /* both ways (OUT | IN) */
};

enum config_bridge_start {
	CONFIG_BRIDGE_AUTOMATIC = 0, /* at start-up, and again after restart_timeout (default) */
	CONFIG_BRIDGE_LAZY = 1,      /* once `threshold` messages wait; stops after idle_timeout */
	CONFIG_BRIDGE_ONCE = 2,      /* at start-up, never again after a failure */
};

/*
 * One `topic` line. Strings are NUL-terminated and allocated; "" given as `""` is empty.
 * local_topic and remote_topic are the prefixes joined to the pattern, each a valid topic
 * filter (checked when parsed): the local filter an out/both rule subscribes to, the remote
 * one an in/both rule subscribes to. An empty pattern (Mosquitto's "remap one topic" rows)
 * needs both prefixes, and its filters are the prefixes themselves.
 */
struct config_bridge_topic {
	char *pattern;       /* the topic pattern (a filter; may be empty, see mosquitto.conf) */
	char *local_prefix;  /* "" when none */
	char *remote_prefix; /* "" when none */
	char *local_topic;   /* local_prefix + pattern */
	char *remote_topic;  /* remote_prefix + pattern */
	/* strlen() of the four above, for the per-message mapping (each fits an MQTT string). */
	uint16_t local_prefix_len, remote_prefix_len, local_topic_len, remote_topic_len;
	uint8_t dir; /* enum config_bridge_dir */
	uint8_t qos; /* 0..2 (default 0) */
};

struct config_bridge_addr {
	char host[CONFIG_BRIDGE_HOST_MAX]; /* name or address (an IPv6 one without brackets) */
	uint16_t port;                     /* 1883 when not given */
};

/* One `connection` block, with Mosquitto's defaults for what it does not set. */
struct config_bridge {
	char *name;    /* `connection NAME` */
	char *path;    /* file of the `connection` line (for messages), allocated */
	unsigned line; /* its line */
	struct config_bridge_addr addrs[CONFIG_BRIDGE_ADDRS_MAX];
	unsigned addr_count; /* at least 1 after config_bridge_finish */
	bool round_robin; /* false: the first address is the main one, retried while on another */
	struct config_bridge_topic *topics; /* in file order */
	unsigned topic_count;               /* at least 1 after config_bridge_finish */
	/* Default "HOSTNAME.NAME": what mosquitto 2.0.11 sends, although mosquitto.conf(5) says
	 * "name.hostname" (set by config_bridge_finish, as the defaults below that use it). */
	char *remote_clientid;
	char *local_clientid;        /* default "local.REMOTE_CLIENTID" */
	char *remote_username;       /* NULL: none */
	char *remote_password;       /* NULL: none (needs remote_username) */
	char *local_username;        /* NULL: none; the local session's user for ACL checks */
	char *local_password;        /* NULL: none */
	bool cleansession;           /* false */
	bool local_cleansession;     /* defaults to cleansession */
	bool local_cleansession_set; /* local_cleansession was given */
	uint16_t keepalive_s;        /* keepalive_interval: 60; below 5 read as 5, as Mosquitto */
	uint32_t idle_timeout_s;     /* lazy: 60; 0 read as 1 */
	uint32_t threshold;          /* lazy: 10; 0 read as 1 */
	uint32_t restart_base_s;     /* restart_timeout: jitter base 5 (0 read as 1) ... */
	uint32_t restart_cap_s;      /* ... up to cap 30; base == cap: a constant delay */
	uint8_t start_type;          /* enum config_bridge_start */
	uint8_t protocol_version; /* bridge_protocol_version: 3 (mqttv31), 4 (mqttv311, default), 5
	                           */
	bool try_private;         /* true: the CONNECT's protocol level has 0x80 set */
	bool notifications;       /* true */
	bool notifications_local_only; /* false */
	char *notification_topic;      /* default "$SYS/broker/connection/REMOTE_CLIENTID/state" */
	uint32_t max_packet_size;      /* bridge_max_packet_size: 0, no limit */
	bool outgoing_retain;          /* bridge_outgoing_retain: true */
	bool attempt_unsubscribe;      /* bridge_attempt_unsubscribe: true */
	char bind_address[CONFIG_BRIDGE_HOST_MAX]; /* bridge_bind_address; empty: any */
	/* TLS to the remote: on when cafile, capath or identity is given. */
	bool tls;
	char cafile[CONFIG_BRIDGE_PATH_MAX];
	char capath[CONFIG_BRIDGE_PATH_MAX];
	char certfile[CONFIG_BRIDGE_PATH_MAX];
	char keyfile[CONFIG_BRIDGE_PATH_MAX];
	bool insecure;       /* bridge_insecure: no host name check */
	uint8_t tls_version; /* enum config_tls_version (config.h); default tlsv1.2 */
	char *alpn;          /* bridge_alpn; NULL: none */
	char *psk_identity;  /* bridge_identity; NULL: certificates */
	char *psk_hex;       /* bridge_psk, hexadecimal */
	bool require_ocsp;   /* bridge_require_ocsp: only false (true is refused, see .c) */
};

struct config;

/*
 * Parses option `name` with values v[0..n) (`rest`: the line after the name) if it is a bridge
 * option (including Mosquitto's old names clientid, username, password). Returns
 * CONFIG_BRIDGE_NOT_MINE when it is not, ST_OK, or ST_ERR_CONFIG with "FILE:LINE: reason" in
 * err (a bridge option outside a `connection` block, a bad direction or QoS, ...).
 */
#define CONFIG_BRIDGE_NOT_MINE 1
int config_bridge_parse(struct config *cfg, const char *name, const char *const *v, unsigned n,
                        const char *rest, const char *path, unsigned line, char *err,
                        size_t errlen);

/*
 * After the last line: checks each block (an address, at least one topic, remote_password
 * only with remote_username, certificates or PSK not both, ...) and fills in the defaults that
 * depend on other values. ST_OK or ST_ERR_CONFIG with "FILE:LINE: reason" (the block's
 * `connection` line) in err.
 */
int config_bridge_finish(struct config *cfg, char *err, size_t errlen);

/* Frees cfg's bridges and everything they hold (bridges NULL, bridge_count 0 after). */
void config_bridges_free(struct config *cfg);

#endif
