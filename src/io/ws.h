/*
 * WebSocket framing (RFC 6455 section 5) for the io_uring loop, and nothing of MQTT or HTTP.
 *
 * Receive: ws_rx_feed() takes whatever bytes a receive delivered, in any split (a header cut
 * in two, a payload spread over many receives, many frames in one), keeps the little state a
 * frame in progress needs (at most a header's 14 bytes and a control frame's 125), and writes
 * the payload of data frames, unmasked, into the caller's buffer: payloads of consecutive
 * frames end up contiguous there, so a packet the client split across frames is whole again
 * without any copy beyond the unmasking itself. Control frames are gathered and handed back
 * one at a time. Every violation is an error carrying the close code the RFC asks for.
 *
 * Send: a server's frames are unmasked, so a frame is a 2 to 10-byte header before the payload
 * as it is: ws_frame_header() writes the header and the caller sends the payload where it
 * lies. ws_mask() is for the client side (the benchmark tool).
 */
#ifndef STARLING_WS_H
#define STARLING_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_HEADER_MAX  14  /* 2 + 8 bytes of length + 4 of masking key */
#define WS_CONTROL_MAX 125 /* payload bytes of a control frame at most */

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa,
};

/* Close codes (RFC 6455 7.4.1) this side sends. */
enum ws_close_code {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL = 1002,
	WS_CLOSE_UNSUPPORTED = 1003, /* a data type the endpoint does not take (text for MQTT) */
	WS_CLOSE_NO_STATUS = 1005,   /* received a close without a code (never sent) */
	WS_CLOSE_INVALID = 1007,     /* bad data in a frame (a close reason not UTF-8) */
	WS_CLOSE_POLICY = 1008,
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_INTERNAL = 1011,
};

/* What ws_rx_feed() returns besides errors. */
enum ws_rx_result {
	WS_RX_MORE = 0,    /* input used up, or the output buffer is full: call again */
	WS_RX_CONTROL = 1, /* a whole control frame: ctl_op, ctl[0..ctl_len) */
};

/* One direction of a connection's incoming frames. Zeroed, then ws_rx_init(). */
struct ws_rx {
	uint64_t left;              /* payload bytes of the current frame still to come */
	uint64_t frame_max;         /* largest data frame payload accepted (1009 past it) */
	uint8_t hdr[WS_HEADER_MAX]; /* header bytes gathered while it is incomplete */
	uint8_t hdr_len;            /* bytes in hdr; 0 between frames */
	uint8_t opcode;             /* the current frame's opcode */
	uint8_t key[4];             /* the current frame's masking key */
	uint8_t key_off;            /* payload bytes of it unmasked so far, mod 4 */
	bool in_payload;            /* the header is done, payload bytes follow */
	bool in_message;            /* a fragmented binary message is open */
	bool want_mask;             /* frames must be masked (server side) or must not be */
	uint8_t ctl_op;             /* the control frame gathered or handed back */
	uint8_t ctl_len;            /* its payload bytes in ctl */
	uint8_t ctl[WS_CONTROL_MAX];
	uint16_t close_code; /* after an error: the code to close with */
	const char *why;     /* after an error: what was wrong (static text) */
};

/* Sets rx up: want_mask for a server (clients must mask), frame_max bounds a data frame. */
void ws_rx_init(struct ws_rx *rx, bool want_mask, uint64_t frame_max);

/*
 * Decodes in[0..n). Unmasked payload of binary frames is appended to out[*out_len..cap);
 * *used says how much input was taken. Returns WS_RX_MORE (input used up, or out full),
 * WS_RX_CONTROL (a control frame is whole: rx->ctl_op, rx->ctl, rx->ctl_len, valid until the
 * next call), or ST_ERR_PROTOCOL / ST_ERR_TOO_LARGE with rx->close_code and rx->why (the
 * connection must close; rx is then unusable).
 */
int ws_rx_feed(struct ws_rx *rx, const uint8_t *in, size_t n, size_t *used, uint8_t *out,
               size_t cap, size_t *out_len);

/*
 * Checks a received close frame's payload: sets *code (WS_CLOSE_NO_STATUS when empty).
 * Returns 0, or the close code to answer with when it is malformed (1002: one byte, or a code
 * no endpoint may send; 1007: a reason that is not UTF-8).
 */
int ws_close_parse(const uint8_t *p, size_t n, uint16_t *code);

/*
 * Writes a final frame's header (FIN set) for a payload of len bytes into hdr (WS_HEADER_MAX
 * bytes), masked with key when key is not NULL (then the payload must be masked with it, from
 * offset 0). Returns the header's length.
 */
size_t ws_frame_header(uint8_t *hdr, unsigned opcode, uint64_t len, const uint8_t *key);

/* XORs p[0..n) with key, as bytes off, off+1, ... of a payload (off mod 4 matters). */
void ws_mask(uint8_t *p, size_t n, const uint8_t key[4], size_t off);

#endif
