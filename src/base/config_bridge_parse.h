/*
 * What the two files of the bridge parser share (config_bridge.c: the block's options, the
 * checks and defaults at the end; config_bridge_topic.c: the `topic` and `address` lines).
 * Used by them only.
 */
#ifndef STARLING_CONFIG_BRIDGE_PARSE_H
#define STARLING_CONFIG_BRIDGE_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "config_bridge.h"

/* Where a line came from and where its error goes. */
struct bwhere {
	const char *path; /* file name, for messages */
	unsigned line;    /* 1-based */
	char *err;        /* caller's buffer */
	size_t errlen;    /* its size */
};

/* Writes "PATH:LINE: " and the message into at->err; returns ST_ERR_CONFIG. */
__attribute__((format(printf, 2, 3))) int bridge_fail(const struct bwhere *at, const char *fmt,
                                                      ...);

/* ST_OK if exactly one value was given, else the error. */
int bridge_one_value(const char *name, unsigned n, const char *const *v, const struct bwhere *at);

/* Decimal digits only: 0, -1 if not a number, -2 if above max. */
int bridge_parse_u32(const char *s, uint32_t max, uint32_t *out);

/* `topic PATTERN [DIR [QOS [LOCAL_PREFIX [REMOTE_PREFIX]]]]` appended to b's topics. */
int config_bridge_topic(struct config_bridge *b, const char *const *v, unsigned n,
                        const struct bwhere *at);

/* `address`/`addresses HOST[:PORT] ...`, once per block. */
int config_bridge_addresses(struct config_bridge *b, const char *name, const char *const *v,
                            unsigned n, const struct bwhere *at);

/* Whether `name` is a bridge option (`connection` or one that goes in a block). */
bool config_bridge_is_option(const char *name);

#endif
