/*
 * WebSocket frames in and out (see ws.h). The decoder is a byte-exact state machine over the
 * caller's buffers: a header is gathered in rx->hdr only while it is incomplete (it is checked
 * from its first two bytes on, so a bad opcode or an unmasked frame fails at once), and the
 * payload is unmasked eight bytes at a time straight into the caller's output.
 */
#include "ws.h"

#include <string.h>

#include "starling/error.h"
#include "starling/utf8.h"

void ws_rx_init(struct ws_rx *rx, bool want_mask, uint64_t frame_max)
{
	memset(rx, 0, sizeof(*rx));
	rx->want_mask = want_mask;
	rx->frame_max = frame_max;
}

static int ws_fail(struct ws_rx *rx, uint16_t code, const char *why)
{
	rx->close_code = code;
	rx->why = why;
	return code == WS_CLOSE_TOO_BIG ? ST_ERR_TOO_LARGE : ST_ERR_PROTOCOL;
}

static bool ws_is_control(unsigned op)
{
	return op & 0x8;
}

/* Bytes the header needs, as far as its first two bytes tell. */
static size_t ws_header_len(const uint8_t *h, size_t have)
{
	unsigned len7;

	if (have < 2)
		return 2;
	len7 = h[1] & 0x7f;
	return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
}

/* The first two bytes: everything that does not depend on the length. */
static int ws_check_start(struct ws_rx *rx, const uint8_t *h)
{
	unsigned op = h[0] & 0x0f;
	bool fin = h[0] & 0x80;

	if (h[0] & 0x70)
		return ws_fail(rx, WS_CLOSE_PROTOCOL, "reserved bits set (no extension agreed)");
	if (((h[1] & 0x80) != 0) != rx->want_mask)
		return ws_fail(rx, WS_CLOSE_PROTOCOL,
		               rx->want_mask ? "unmasked frame from a client"
		                             : "masked frame from a server");
	if (ws_is_control(op)) {
		if (op != WS_OP_CLOSE && op != WS_OP_PING && op != WS_OP_PONG)
			return ws_fail(rx, WS_CLOSE_PROTOCOL, "reserved control opcode");
		if (!fin)
			return ws_fail(rx, WS_CLOSE_PROTOCOL, "fragmented control frame");
		if ((h[1] & 0x7f) > WS_CONTROL_MAX)
			return ws_fail(rx, WS_CLOSE_PROTOCOL, "control frame over 125 bytes");
		return ST_OK;
	}
	if (op == WS_OP_TEXT)
		return ws_fail(rx, WS_CLOSE_UNSUPPORTED,
		               "text frame (MQTT travels in binary frames)");
	if (op == WS_OP_BINARY && rx->in_message)
		return ws_fail(rx, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
	if (op == WS_OP_CONT && !rx->in_message)
		return ws_fail(rx, WS_CLOSE_PROTOCOL, "continuation frame without a message");
	if (op != WS_OP_BINARY && op != WS_OP_CONT)
		return ws_fail(rx, WS_CLOSE_PROTOCOL, "reserved data opcode");
	return ST_OK;
}

/* A whole header in rx->hdr: the frame's length and key, checked. */
static int ws_start_frame(struct ws_rx *rx)
{
	const uint8_t *h = rx->hdr;
	unsigned len7 = h[1] & 0x7f, at = 2;
	uint64_t len = len7;

	if (len7 == 126) {
		len = (uint64_t)h[2] << 8 | h[3];
		at = 4;
		if (len < 126)
			return ws_fail(rx, WS_CLOSE_PROTOCOL, "length not in its shortest form");
	} else if (len7 == 127) {
		len = 0;
		for (unsigned i = 0; i < 8; i++)
			len = len << 8 | h[2 + i];
		at = 10;
		if (len >> 63)
			return ws_fail(rx, WS_CLOSE_PROTOCOL, "length with its top bit set");
		if (len <= 0xffff)
			return ws_fail(rx, WS_CLOSE_PROTOCOL, "length not in its shortest form");
	}
	rx->opcode = h[0] & 0x0f;
	if (!ws_is_control(rx->opcode)) {
		if (len > rx->frame_max)
			return ws_fail(rx, WS_CLOSE_TOO_BIG, "data frame over the largest packet");
		rx->in_message = !(h[0] & 0x80);
	}
	if (h[1] & 0x80)
		memcpy(rx->key, h + at, 4);
	else
		memset(rx->key, 0, 4);
	rx->left = len;
	rx->key_off = 0;
	rx->ctl_len = 0;
	rx->hdr_len = 0;
	rx->in_payload = true;
	return ST_OK;
}

/* Takes header bytes from in[0..n); returns how many, or an error. */
static int ws_gather_header(struct ws_rx *rx, const uint8_t *in, size_t n, size_t *took)
{
	size_t need = ws_header_len(rx->hdr, rx->hdr_len);

	*took = 0;
	while (rx->hdr_len < need && *took < n) {
		rx->hdr[rx->hdr_len++] = in[(*took)++];
		if (rx->hdr_len == 2) {
			int ret = ws_check_start(rx, rx->hdr);

			if (ret < 0)
				return ret;
			need = ws_header_len(rx->hdr, 2);
		}
	}
	return rx->hdr_len == need ? ws_start_frame(rx) : ST_OK;
}

static void ws_unmask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4],
                           size_t off)
{
	uint8_t k[8];
	uint64_t m;
	size_t i = 0;

	for (unsigned j = 0; j < 8; j++)
		k[j] = key[(off + j) & 3];
	memcpy(&m, k, 8);
	for (; i + 8 <= n; i += 8) {
		uint64_t v;

		memcpy(&v, src + i, 8);
		v ^= m;
		memcpy(dst + i, &v, 8);
	}
	for (; i < n; i++)
		dst[i] = src[i] ^ k[i & 7];
}

void ws_mask(uint8_t *p, size_t n, const uint8_t key[4], size_t off)
{
	ws_unmask_copy(p, p, n, key, off);
}

int ws_rx_feed(struct ws_rx *rx, const uint8_t *in, size_t n, size_t *used, uint8_t *out,
               size_t cap, size_t *out_len)
{
	size_t i = 0, o = *out_len;
	int ret = WS_RX_MORE;

	while (i < n || (rx->in_payload && rx->left == 0)) {
		size_t take;

		if (!rx->in_payload) {
			ret = ws_gather_header(rx, in + i, n - i, &take);
			i += take;
			if (ret < 0)
				break;
			continue;
		}
		take = rx->left < n - i ? (size_t)rx->left : n - i;
		if (ws_is_control(rx->opcode)) {
			ws_unmask_copy(rx->ctl + rx->ctl_len, in + i, take, rx->key, rx->key_off);
			rx->ctl_len = (uint8_t)(rx->ctl_len + take);
		} else {
			if (take > cap - o)
				take = cap - o;
			if (take == 0 && rx->left > 0)
				break; /* out is full */
			ws_unmask_copy(out + o, in + i, take, rx->key, rx->key_off);
			o += take;
		}
		i += take;
		rx->left -= take;
		rx->key_off = (uint8_t)((rx->key_off + take) & 3);
		if (rx->left > 0)
			continue;
		rx->in_payload = false;
		if (ws_is_control(rx->opcode)) {
			rx->ctl_op = rx->opcode;
			ret = WS_RX_CONTROL;
			break;
		}
	}
	*used = i;
	*out_len = o;
	return ret;
}

/* UTF-8 as a close reason may hold it: well-formed, U+0000 included (st_utf8_check refuses
 * U+0000 as MQTT does, so the text is checked between NUL bytes). */
static bool ws_utf8_ok(const uint8_t *p, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && p[i] != 0)
			continue;
		if (st_utf8_check(p + start, i - start) != ST_OK)
			return false;
		start = i + 1;
	}
	return true;
}

int ws_close_parse(const uint8_t *p, size_t n, uint16_t *code)
{
	*code = WS_CLOSE_NO_STATUS;
	if (n == 0)
		return 0;
	if (n == 1)
		return WS_CLOSE_PROTOCOL;
	*code = (uint16_t)(p[0] << 8 | p[1]);
	/* 1004-1006 and 1015 are reserved for reports, never sent (RFC 6455 7.4.1). */
	if (!((*code >= 1000 && *code <= 1003) || (*code >= 1007 && *code <= 1014) ||
	      (*code >= 3000 && *code <= 4999)))
		return WS_CLOSE_PROTOCOL;
	return ws_utf8_ok(p + 2, n - 2) ? 0 : WS_CLOSE_INVALID;
}

size_t ws_frame_header(uint8_t *hdr, unsigned opcode, uint64_t len, const uint8_t *key)
{
	size_t at;

	hdr[0] = (uint8_t)(0x80 | (opcode & 0x0f));
	if (len < 126) {
		hdr[1] = (uint8_t)len;
		at = 2;
	} else if (len <= 0xffff) {
		hdr[1] = 126;
		hdr[2] = (uint8_t)(len >> 8);
		hdr[3] = (uint8_t)len;
		at = 4;
	} else {
		hdr[1] = 127;
		for (unsigned i = 0; i < 8; i++)
			hdr[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		at = 10;
	}
	if (key) {
		hdr[1] |= 0x80;
		memcpy(hdr + at, key, 4);
		at += 4;
	}
	return at;
}
