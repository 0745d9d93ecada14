/*
 * MQTT packet handlers: what the broker does with each packet a client sends, and how a
 * connection's errors and end are answered. They act on the connection's session and the
 * worker's index and stores, and queue replies with out_*(); they never touch sockets.
 */
#ifndef STARLING_HANDLERS_H
#define STARLING_HANDLERS_H

#include <stdbool.h>

#include "starling/codec.h"

struct conn;

/* Handles one decoded packet. A negative return is a protocol error that closes c. */
int handle_packet(struct conn *c, const struct st_packet *pkt);

int handle_connect(struct conn *c, const struct st_connect *ck);
int handle_publish(struct conn *c, const struct st_publish *p);
int handle_ack(struct conn *c, uint8_t type, const struct st_ack *ack);
int handle_subscribe(struct conn *c, const struct st_packet *pkt);
int handle_unsubscribe(struct conn *c, const struct st_packet *pkt);

/* A packet body the codec rejected (err): answer as the spec says, and close. */
void handle_decode_error(struct conn *c, const struct st_fixed_header *fh, int err);

/* A fixed header the codec rejected: remaining length too long or over the limit. */
void handle_framing_error(struct conn *c, int err);

/* A well-formed packet that broke a rule (handler returned err): close. */
void handle_protocol_error(struct conn *c, int err);

/*
 * The connection is ending (called once, by conn_close): publishes the will unless graceful,
 * detaches the session and ends it if it was clean, logs.
 */
void handle_conn_closing(struct conn *c, bool graceful, const char *reason);

#endif
