/*
 * Broker configuration: Mosquitto-style "name value" lines (the options users of Mosquitto
 * actually set) and the starlingd command line. Parsing fills a plain struct; nothing here
 * touches sockets or the broker. An unknown option or a bad value is an error naming the file
 * and line, never a silent skip.
 */
#ifndef STARLING_CONFIG_H
#define STARLING_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_bridge.h"
#include "config_cluster.h"
#include "config_limits.h"

#define CONFIG_LISTENERS_MAX 16
#define CONFIG_WORKERS_MAX   64 /* worker threads at most (a 64-bit mask of workers) */
#define CONFIG_METRICS_MAX   4  /* metrics_listener lines at most */
/* One of each kind: stderr, stdout, file, syslog, topic (duplicates are merged, as Mosquitto's
 * bit mask does). */
#define CONFIG_LOG_DESTS_MAX          5
#define CONFIG_LOG_TIMESTAMP_FMT_SIZE 64
#define CONFIG_USER_MAX               256 /* a user name (LOGIN_NAME_MAX) */
#define CONFIG_NOTICES_MAX            16  /* notices about options kept for the log */
#define CONFIG_NOTICE_SIZE            320 /* "FILE:LINE: " and one sentence */

/* log_type bits (Mosquitto's names). */
enum config_log_type {
	LOG_T_ERROR = 1u << 0,
	LOG_T_WARNING = 1u << 1,
	LOG_T_NOTICE = 1u << 2,
	LOG_T_INFORMATION = 1u << 3,
	LOG_T_DEBUG = 1u << 4,
	LOG_T_SUBSCRIBE = 1u << 5,
	LOG_T_UNSUBSCRIBE = 1u << 6,
	LOG_T_WEBSOCKETS = 1u << 7, /* WebSocket handshakes and framing errors */
	LOG_T_ALL = 0xffu,
};

enum config_log_dest_kind {
	LOG_DEST_STDERR,
	LOG_DEST_STDOUT,
	LOG_DEST_FILE,
	LOG_DEST_SYSLOG,
	LOG_DEST_TOPIC, /* published to $SYS/broker/log/<level> */
	LOG_DEST_NONE,  /* `log_dest none`: the only entry when present */
};

struct config_log_dest {
	enum config_log_dest_kind kind; /* where lines go */
	char path[PATH_MAX];            /* LOG_DEST_FILE only */
};

/* Who may connect and what they may do: Mosquitto's security options. Broker-wide, or one per
 * listener with per_listener_settings true. Empty paths: no such file. */
struct config_auth {
	char password_file[PATH_MAX]; /* `password_file` */
	char acl_file[PATH_MAX];      /* `acl_file` */
	char psk_file[PATH_MAX];      /* `psk_file`: TLS-PSK identities and keys */
	bool allow_anonymous;         /* after config_finish: in effect */
	bool allow_anonymous_set;     /* given explicitly */
};

#define CONFIG_TLS_PATH_MAX    1024 /* a certificate, key, CA or CRL path */
#define CONFIG_TLS_CIPHERS_MAX 1024 /* a cipher list */

/* tls_version: the lowest protocol version a listener accepts (Mosquitto 2's meaning). */
enum config_tls_version {
	CONFIG_TLS_DEFAULT = 0, /* TLS 1.2 and 1.3 */
	CONFIG_TLS_V12 = 12,    /* tlsv1.2: 1.2 and up */
	CONFIG_TLS_V13 = 13,    /* tlsv1.3: 1.3 only */
};

/* A listener's certificate-based TLS options (mosquitto.conf(5)); empty strings: not set. */
struct config_tls {
	char cafile[CONFIG_TLS_PATH_MAX];     /* PEM CAs trusted for client certificates */
	char capath[CONFIG_TLS_PATH_MAX];     /* directory of hashed PEM CAs (openssl rehash) */
	char certfile[CONFIG_TLS_PATH_MAX];   /* PEM server certificate (chain) */
	char keyfile[CONFIG_TLS_PATH_MAX];    /* PEM private key of certfile */
	char crlfile[CONFIG_TLS_PATH_MAX];    /* PEM revocation list checked against clients */
	char ciphers[CONFIG_TLS_CIPHERS_MAX]; /* TLS 1.2 cipher list; empty: OpenSSL's */
	char ciphers_tls13[CONFIG_TLS_CIPHERS_MAX]; /* TLS 1.3 cipher suites; empty: OpenSSL's */
	uint8_t version;                            /* enum config_tls_version */
	bool require_certificate;      /* clients must present a certificate the CAs verify */
	bool use_identity_as_username; /* the certificate's CN is the client's username */
	bool use_subject_as_username;  /* its whole subject (RFC 2253) is the username */
};

/* `protocol`: what a listener speaks above TCP (or TLS). */
enum config_protocol {
	CONFIG_PROTO_MQTT = 0,       /* MQTT straight on the stream (the default) */
	CONFIG_PROTO_WEBSOCKETS = 1, /* MQTT in WebSocket binary frames after an HTTP upgrade */
};

#define CONFIG_MOUNT_POINT_MAX 1024 /* bytes of a mount_point */
#define CONFIG_PSK_HINT_MAX    129  /* a psk_hint and its NUL (OpenSSL: 128 bytes) */
#define CONFIG_IFNAME_MAX      16   /* a bind_interface and its NUL (IFNAMSIZ) */

/* socket_domain: the address families a listener opens. */
enum config_socket_domain {
	CONFIG_DOMAIN_ANY = 0, /* every family its address resolves to (the default) */
	CONFIG_DOMAIN_IPV4 = 4,
	CONFIG_DOMAIN_IPV6 = 6,
};

/* The per-listener options of mosquitto.conf(5)'s "Listeners" section beyond the address and
 * protocol (config_listener.c); zero: not set. */
struct config_listener_opts {
	char mount_point[CONFIG_MOUNT_POINT_MAX]; /* prefix of its clients' topics; empty: none */
	char bind_interface[CONFIG_IFNAME_MAX];   /* SO_BINDTODEVICE; empty: any interface */
	char http_dir[PATH_MAX];                  /* websockets: static files; empty: no HTTP */
	char psk_hint[CONFIG_PSK_HINT_MAX];       /* TLS-PSK with this hint; empty: no PSK */
	uint32_t max_connections;                 /* connections at once; 0: no limit */
	uint8_t socket_domain;                    /* enum config_socket_domain */
};

struct config_listener {
	uint16_t port;           /* TCP port; 0 asks the kernel for an ephemeral one */
	uint8_t protocol;        /* enum config_protocol */
	bool loopback_v6;        /* local-only mode: ::1 too, beside bind 127.0.0.1 (Mosquitto 2) */
	char bind[256];          /* address or host name; empty: all interfaces */
	struct config_auth auth; /* per_listener_settings true: this listener's security */
	struct config_tls tls;   /* TLS options; a listener with certfile and keyfile is TLS */
	struct config_listener_limits lim; /* max_qos, client id options (config_limits.h) */
	struct config_listener_opts opts;  /* mount_point, bind_interface, psk_hint... */
};

/* Whether the listener is a TLS listener: it has a certificate and its key, or a psk_hint
 * (mosquitto.conf). */
static inline bool config_listener_is_tls(const struct config_listener *l)
{
	return (l->tls.certfile[0] != '\0' && l->tls.keyfile[0] != '\0') ||
	       l->opts.psk_hint[0] != '\0';
}

/* `metrics_listener PORT [ADDRESS]`: an HTTP listener serving GET /metrics (Prometheus). */
struct config_metrics_listener {
	uint16_t port;  /* TCP port; 0 asks the kernel for an ephemeral one */
	char bind[256]; /* address or host name; empty: all interfaces */
};

/* event_backend: auto tries io_uring and falls back to epoll, saying why. */
enum config_event_backend {
	CONFIG_BACKEND_AUTO = 0,
	CONFIG_BACKEND_IO_URING,
	CONFIG_BACKEND_EPOLL,
};

struct config {
	/* In file order while parsing; config_finish() appends the default listener (or builds the
	 * local-only ones), after which this is the complete list to open. */
	struct config_listener listeners[CONFIG_LISTENERS_MAX];
	unsigned listener_count;   /* after config_finish: at least 1 */
	char bind_address[256];    /* `bind_address`: the default listener's address */
	uint16_t default_port;     /* `port`: the default listener's port (1883) */
	bool default_listener_set; /* the file gave `port`, `bind_address` or a TLS option first */
	struct config_tls default_tls;    /* TLS options given before any `listener` line */
	uint8_t default_protocol;         /* `protocol` given before any `listener` line */
	uint32_t websockets_headers_size; /* bytes an HTTP upgrade request may take (8192) */
	uint16_t cmd_ports[CONFIG_LISTENERS_MAX]; /* -p PORT, in order (Mosquitto allows several) */
	unsigned cmd_port_count;                  /* entries in cmd_ports */
	bool cmd_ports_ignored; /* -p given but the file defines listeners (Mosquitto 2) */
	bool local_only;        /* derived: no listener configured, loopback only */
	/* Listener options given before any `listener` line: the default listener's. */
	struct config_listener_opts default_opts;
	bool allow_anonymous;       /* Mosquitto 2 default: true only without listeners */
	bool allow_anonymous_set;   /* the file set allow_anonymous explicitly */
	bool per_listener_settings; /* security options belong to the listener above them */
	bool security_seen;         /* a security option was read (per_listener_settings) */
	/* The broker-wide password_file and acl_file (allow_anonymous is above); with
	 * per_listener_settings, those given before any `listener` (the default listener's). */
	char password_file[PATH_MAX];
	char acl_file[PATH_MAX];
	char psk_file[PATH_MAX];
	uint32_t max_inflight_messages; /* outbound QoS 1/2 window per client (65535; 0 read: 65535)
	                                 */
	/* The broker's MQTT 5 Receive Maximum: max_inflight_messages when the file gives it (as
	 * Mosquitto), otherwise Mosquitto's default, 20 (README, "max_inflight_messages"). */
	uint32_t receive_maximum;
	uint32_t
	        max_queued_messages; /* QoS 1/2 held per client past inflight (1000; 0: no limit) */
	uint32_t message_size_limit; /* largest PUBLISH payload accepted (0: protocol max) */
	uint32_t max_packet_size;    /* largest packet accepted (0: protocol max) */
	uint16_t max_keepalive;      /* keepalive cap in seconds (65535) */
	bool retain_available;       /* retained messages supported (true) */
	uint16_t max_topic_alias;    /* MQTT 5 topic aliases accepted per client (10) */
	bool set_tcp_nodelay;        /* TCP_NODELAY on client sockets (Starling: true) */
	uint32_t max_output_bytes;   /* unsent bytes per connection before QoS 0 is dropped */
	uint64_t max_output_memory;  /* unsent bytes of all connections; 0: 1/8 of the RAM */
	uint32_t client_send_buffer; /* SO_SNDBUF of client sockets; 0: the kernel's autotuning */
	uint32_t sys_interval_s;     /* seconds between $SYS updates (10; 0: no $SYS) */
	uint32_t worker_threads;     /* worker threads; 0: one per CPU the process may use */
	bool cpu_affinity;           /* pin worker i to the i-th CPU the process may use */
	uint32_t worker_channel_size; /* entries per cross-worker channel; 0: by worker count */
	uint32_t max_batch_delay_us;  /* how long output may wait to be batched; 0: never */
	int32_t cmd_worker_threads;   /* -t N, which wins over the file; -1: not given */
	uint32_t log_types;           /* enum config_log_type bits in effect */
	bool log_types_set;           /* the file gave log_type at least once */
	struct config_log_dest log_dests[CONFIG_LOG_DESTS_MAX]; /* in file order, kinds distinct */
	unsigned log_dest_count;                                /* 0: stderr */
	bool log_timestamp; /* prefix lines with a time stamp (true) */
	/* strftime(3) format of the stamp; empty: seconds since the epoch, as Mosquitto. */
	char log_timestamp_format[CONFIG_LOG_TIMESTAMP_FMT_SIZE];
	char pid_file[PATH_MAX]; /* empty: none */
	/* `user`: whom a root start becomes once its sockets are bound (base/privdrop.h); empty:
	 * `starling` if it exists, else root. Checked to exist when read. */
	char user[CONFIG_USER_MAX];
	/* Persistence (issue 10; kernel-notes/persistence.md). */
	bool persistence; /* keep retained messages and sessions on disk (false) */
	char persistence_location[PATH_MAX]; /* the log's directory; empty: the working directory */
	char persistence_file[NAME_MAX + 1]; /* the log files' name prefix ("starling.db") */
	uint32_t autosave_interval;          /* compaction period: seconds, or records (1800) */
	bool autosave_on_changes; /* autosave_interval counts changed records, not seconds */
	bool persistence_sync;    /* acknowledge only what is synced (always: true) */
	/* Prometheus metrics listeners (repeatable; none: no metrics). */
	struct config_metrics_listener metrics[CONFIG_METRICS_MAX];
	unsigned metrics_count; /* entries in metrics */
	/* The event loop (issue 11): io_uring, epoll, or io_uring when it works (auto). */
	enum config_event_backend event_backend;
	/* Logging and include_dir (issue 16). */
	bool connection_messages; /* log clients connecting and disconnecting (true) */
	int8_t log_facility;      /* `log_facility N`: syslog's local0..local7; -1: daemon */
	uint8_t include_depth;    /* while loading: 0 in the main file, 1 in an included one */
	const char *main_path;    /* while config_load_file reads the main file: its path */
	/* The last `listener` was read from another file than the line being read: Mosquitto
	 * gives listener options there to the default listener, so config.c refuses a line
	 * that would change that listener (config_include.c sets and clears it). */
	bool listener_foreign;
	/* Notices about accepted options (deprecated, ignored), "FILE:LINE: text", logged at
	 * start-up; notices_dropped counts those past CONFIG_NOTICES_MAX. */
	char notices[CONFIG_NOTICES_MAX][CONFIG_NOTICE_SIZE];
	unsigned notice_count;
	unsigned notices_dropped;
	/* Limits, queues and client identifiers (issue 16; config_limits.h). */
	struct config_limits limits;
	/* The cluster through NATS (issue 14; config_cluster.h). */
	struct config_cluster cluster;
	/* Bridges (issue 12; config_bridge.h): `connection` blocks in file order, allocated. */
	struct config_bridge *bridges;
	unsigned bridge_count;
	unsigned bridge_cap; /* entries allocated in bridges */
	/* While a file is read: 1 + the index of the block its bridge lines go to, 0 for none.
	 * Each file starts outside any block (config_load_file saves and restores it), as
	 * Mosquitto keeps the current bridge per file. */
	unsigned bridge_open;
	bool verbose;               /* -v: every log type, as Mosquitto's log_type all */
	bool daemonize;             /* -d */
	char config_path[PATH_MAX]; /* -c FILE, empty if none */
	bool finished;              /* config_finish() ran; a second call does nothing */
};

/* Fills *cfg with Starling's defaults (Mosquitto's, except TCP_NODELAY on). */
void config_defaults(struct config *cfg);

/*
 * Reads a Mosquitto-style file into *cfg (on top of what it holds). On error returns
 * ST_ERR_CONFIG and writes "FILE:LINE: reason" into err[0..errlen).
 */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen);

/* Parses one line as if read from file `path` at `line`; exposed for the unit tests. */
int config_parse_line(struct config *cfg, const char *text, const char *path, unsigned line,
                      char *err, size_t errlen);

/*
 * Parses starlingd's argv (-c FILE -p PORT -v -d -h, and the long forms), loads the file if
 * given, then calls config_finish(). *cfg must hold config_defaults() first; argv is borrowed.
 * Returns ST_OK, 1 when -h printed help and the program should exit 0, or ST_ERR_CONFIG with
 * err filled (the reason, a newline, and the usage line).
 */
int config_from_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen);

/*
 * Derives the effective listener list and allow_anonymous after loading (Mosquitto 2.0's rules,
 * spelled out in config.c). Calling it again does nothing.
 */
void config_finish(struct config *cfg);

#endif
