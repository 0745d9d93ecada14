/*
 * MQTT packet handlers: what the broker does with each packet a client sends, and how a
 * connection's errors and end are answered. They act on the connection's session and the
 * worker's index and stores, and queue replies with out_*(); they never touch sockets.
 */
#ifndef STARLING_HANDLERS_H
#define STARLING_HANDLERS_H

#include <stdbool.h>

#include "starling/codec.h"
#include "starling/props.h"

struct conn;
struct session;
struct worker;

/* Handles one decoded packet. A negative return is a protocol error that closes c. */
int handle_packet(struct conn *c, const struct st_packet *pkt);

int handle_connect(struct conn *c, const struct st_connect *ck);
int handle_publish(struct conn *c, const struct st_publish *p);
int handle_ack(struct conn *c, uint8_t type, const struct st_ack *ack);
int handle_subscribe(struct conn *c, const struct st_packet *pkt);
int handle_unsubscribe(struct conn *c, const struct st_packet *pkt);

/*
 * The properties of a PUBLISH or will that travel to subscribers (MQTT 5 section 3.3.2.3):
 * raw without Topic Alias, Message Expiry Interval, Will Delay Interval and Subscription
 * Identifiers, which the broker rewrites per delivery. *out is raw itself when there is
 * nothing to remove, else a copy in worker scratch memory valid until the next call.
 */
int handle_forward_props(struct worker *w, struct st_bytes raw, const struct st_props *parsed,
                         struct st_bytes *out);

/* A session's delayed will is due (or its session ends): publish it. */
void handle_session_will_due(struct worker *w, struct session *s);

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
