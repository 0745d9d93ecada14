/*
 * The limits, queues and client-identity options of mosquitto.conf(5) (issue 16, part B):
 * memory_limit, max_queued_bytes, max_inflight_bytes, max_qos, queue_qos0_messages,
 * upgrade_outgoing_qos, persistent_client_expiration, allow_zero_length_clientid,
 * auto_id_prefix, clientid_prefixes, use_username_as_clientid, check_retain_source.
 *
 * Kept apart from config.c, which holds the generic parser: config_parse_line() hands a line
 * whose option it does not know to config_limits_parse(). The broker-wide values live in
 * struct config_limits; those Mosquitto keeps per listener (max_qos, use_username_as_clientid,
 * and with per_listener_settings allow_zero_length_clientid and auto_id_prefix) in struct
 * config_listener_limits, whose all-zero value is Mosquitto's default, since listeners are
 * made by memset. config_limits_finish() leaves every listener with the values in effect.
 */
#ifndef STARLING_CONFIG_LIMITS_H
#define STARLING_CONFIG_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_AUTO_ID_PREFIX_MAX  64  /* bytes of auto_id_prefix at most */
#define CONFIG_CLIENTID_PREFIX_MAX 256 /* bytes of clientid_prefixes at most */

/* What one listener does with client ids and QoS; all zero: Mosquitto's defaults. */
struct config_listener_limits {
	bool max_qos_set;                 /* max_qos given: max_qos is in force, else 2 */
	uint8_t max_qos;                  /* highest QoS accepted from and granted to clients */
	bool use_username_as_clientid;    /* the client id is the user name */
	bool refuse_zero_length_clientid; /* allow_zero_length_clientid false */
	/* The prefix of generated client ids; empty: "auto-". */
	char auto_id_prefix[CONFIG_AUTO_ID_PREFIX_MAX + 1];
};

/* The broker-wide options. */
struct config_limits {
	uint64_t memory_limit;        /* bytes of heap the broker may hold; 0: no limit */
	uint64_t max_queued_bytes;    /* payload bytes queued per client; 0: no limit */
	uint64_t max_inflight_bytes;  /* payload bytes in flight per client; 0: no limit */
	uint32_t persistent_expiry_s; /* persistent_client_expiration; 0: never */
	bool queue_qos0_messages;     /* QoS 0 is queued for offline persistent sessions */
	bool upgrade_outgoing_qos;    /* deliveries take the subscription's QoS */
	bool check_retain_source;     /* retained messages need their source's write access */
	char clientid_prefixes[CONFIG_CLIENTID_PREFIX_MAX + 1]; /* empty: any client id */
	/* allow_zero_length_clientid and auto_id_prefix given without per_listener_settings,
	 * or before any listener with it; max_qos and use_username_as_clientid before any
	 * listener (the default and local-only listeners take them). */
	struct config_listener_limits first;
};

struct config;

/* Mosquitto's defaults (check_retain_source true, the rest off). */
void config_limits_defaults(struct config_limits *l);

/*
 * Parses option `name` with values v[0..n) (`rest`: the line after the name) if it is one of
 * this file's. Returns CONFIG_LIMITS_NOT_MINE when it is not, ST_OK, or ST_ERR_CONFIG with
 * "FILE:LINE: reason" in err.
 */
#define CONFIG_LIMITS_NOT_MINE 1
int config_limits_parse(struct config *cfg, const char *name, const char *const *v, unsigned n,
                        const char *rest, const char *path, unsigned line, char *err,
                        size_t errlen);

/*
 * Gives every listener its values in effect: the broker-wide client-id options unless
 * per_listener_settings, and `first` to listeners from first_appended on (the default and
 * local-only ones, made by config_finish).
 */
void config_limits_finish(struct config *cfg, unsigned first_appended);

/* The highest QoS a listener accepts. */
static inline uint8_t config_listener_max_qos(const struct config_listener_limits *l)
{
	return l->max_qos_set ? l->max_qos : 2;
}

/*
 * Parses persistent_client_expiration's DURATION: a positive integer and one of h d w m y
 * (hour, day, week, month of 30 days, year of 365 days, as Mosquitto), or s (seconds, a
 * Starling extension). Returns 0 with *out in seconds, -1 if malformed, -2 if out of range.
 */
int config_parse_duration(const char *s, uint32_t *out);

#endif
