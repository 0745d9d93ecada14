/*
 * Unit tests of the MQTT 5 property writer and iterator (src/codec/props.c): writer -> parse ->
 * iterate round trips of every property on every packet, the writer at every capacity, golden
 * bytes from mosquitto_pub/mosquitto_sub 2.0.11, paho 1.6.1 and Mosquitto 2.0.11 itself
 * (captured through a relay on 127.0.0.1), and random mutations. Table 2-4 and the parsing
 * rules are in test/test_props.c; the reference model both use is in test/props_cases.h. Every
 * parse and walk reads a guard-page copy, so a read past the block faults.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "starling/props.h"
#include "props_cases.h"
#include "testutil.h"

/* --- round trips through the writer --------------------------------------------------------- */

/* Appends e with the st_pw_* call its spec type calls for. */
static void write_prop(struct st_prop_writer *w, const struct exp_prop *e)
{
	const char *type = spec_row_of(e->id)->type;

	if (strcmp(type, "Byte") == 0)
		st_pw_byte(w, e->id, (uint8_t)e->value);
	else if (strcmp(type, "Two Byte Integer") == 0)
		st_pw_u16(w, e->id, (uint16_t)e->value);
	else if (strcmp(type, "Four Byte Integer") == 0)
		st_pw_u32(w, e->id, e->value);
	else if (strcmp(type, "Variable Byte Integer") == 0)
		st_pw_varint(w, e->id, e->value);
	else if (strcmp(type, "UTF-8 String Pair") == 0)
		st_pw_pair(w, e->id, exp_s(e), exp_s2(e));
	else
		st_pw_str(w, e->id, exp_s(e));
}

/* Every property each packet allows, written, parsed and walked; user properties thrice. */
static void test_roundtrip_every_packet(void)
{
	struct tu_guard g = {0};

	for (int ctx = 0; ctx < NCTX; ctx++) {
		for (unsigned v = 0; v < 4; v++) {
			struct exp_prop exp[64];
			size_t n = 0;

			/* Reverse order on odd variants: order is free (section 2.2.2.2). */
			for (size_t i = 0; i < NROWS; i++) {
				size_t r = v % 2 ? NROWS - 1 - i : i;

				if (!(spec_ctx_mask(&spec_rows[r]) & (1u << ctx)))
					continue;
				bool many = spec_rows[r].id == ST_PROP_USER_PROPERTY ||
				            (spec_rows[r].id == ST_PROP_SUBSCRIPTION_ID &&
				             ctx == ST_PCTX_PUBLISH);

				for (unsigned c = 0; c < (many ? 3u : 1u); c++)
					exp[n++] = sample(spec_rows[r].id, v + c);
			}
			uint8_t buf[BLK_MAX], built[BLK_MAX];
			struct st_prop_writer w;
			struct blk k = {.n = 0};

			st_pw_init(&w, buf, sizeof(buf));
			for (size_t i = 0; i < n; i++) {
				write_prop(&w, &exp[i]);
				put_prop(&k, &exp[i]);
			}
			CU_ASSERT_FALSE(w.overflow);
			/* The writer and the test's own encoder agree byte for byte. */
			CU_ASSERT_EQUAL_FATAL(st_pw_len(&w), k.n);
			memcpy(built, k.b, k.n);
			CU_ASSERT(memcmp(buf, built, k.n) == 0);
			check_block(&g, buf, st_pw_len(&w), ctx, exp, n);
		}
	}
	tu_guard_release(&g);
}

/* User properties keep their order; several Subscription Identifiers in one PUBLISH. */
static void test_order_and_sub_ids(void)
{
	struct tu_guard g = {0};
	const struct exp_prop exp[] = {
	        {.id = 0x26, .s = "b", .s2 = "1"},
	        {.id = 0x0B, .value = 5},
	        {.id = 0x26, .s = "a", .s2 = "2"},
	        {.id = 0x0B, .value = 268435455},
	        {.id = 0x26, .s = "b", .s2 = "3"},
	        {.id = 0x03, .s = "text/plain"},
	        {.id = 0x0B, .value = 128},
	        {.id = 0x26, .s = "", .s2 = ""},
	        {.id = 0x26, .s = "\xe2\x82\xac", .s2 = "euro"},
	};
	size_t n = sizeof(exp) / sizeof(exp[0]);
	struct blk k = {.n = 0};
	struct st_props out;

	for (size_t i = 0; i < n; i++)
		put_prop(&k, &exp[i]);
	check_block(&g, k.b, k.n, ST_PCTX_PUBLISH, exp, n);
	CU_ASSERT_EQUAL(parse_guarded(&g, k.b, k.n, ST_PCTX_PUBLISH, &out), ST_OK);
	CU_ASSERT_EQUAL(out.user_count, 5);
	CU_ASSERT_EQUAL(out.subscription_id, 5);
	CU_ASSERT_EQUAL(out.subscription_id_count, 3);
	/* SUBSCRIBE allows one identifier only: the second is seen before the Content Type. */
	CU_ASSERT_EQUAL(parse_guarded(&g, k.b, k.n, ST_PCTX_SUBSCRIBE, &out), ST_ERR_PROPERTY_DUP);
	tu_guard_release(&g);
}

static void test_empty_block(void)
{
	struct st_props out;
	struct st_prop_iter it;
	struct st_prop p;
	uint8_t one = 0x01;

	for (int ctx = 0; ctx < NCTX; ctx++) {
		memset(&out, 0xA5, sizeof(out));
		CU_ASSERT_EQUAL(st_props_parse((struct st_bytes){NULL, 0}, ctx, &out), ST_OK);
		CU_ASSERT_EQUAL(out.present, 0);
		CU_ASSERT_EQUAL(out.user_count, 0);
		CU_ASSERT_EQUAL(out.receive_maximum, 0); /* absent is zero: callers apply 65535 */
		CU_ASSERT_PTR_NULL(out.content_type.ptr);
		CU_ASSERT_EQUAL(st_props_parse((struct st_bytes){&one, 0}, ctx, &out), ST_OK);
	}
	st_prop_iter_init(&it, (struct st_bytes){NULL, 0});
	CU_ASSERT_FALSE(st_prop_iter_next(&it, &p));
	st_prop_iter_init(&it, (struct st_bytes){&one, 0});
	CU_ASSERT_FALSE(st_prop_iter_next(&it, &p));

	struct st_prop_writer w;

	st_pw_init(&w, NULL, 0);
	CU_ASSERT_EQUAL(st_pw_len(&w), 0);
	CU_ASSERT_FALSE(w.overflow);
	st_pw_raw(&w, (struct st_bytes){NULL, 0}); /* nothing to write fits anywhere */
	CU_ASSERT_FALSE(w.overflow);
	st_pw_byte(&w, ST_PROP_PAYLOAD_FORMAT, 1);
	CU_ASSERT_TRUE(w.overflow);
	CU_ASSERT_EQUAL(st_pw_len(&w), 0);
}

/* --- the writer at every capacity -------------------------------------------------------- */

/* One write of the sequence below. */
static void write_step(struct st_prop_writer *w, int step)
{
	static const uint8_t blob[100] = {1, 2, 3};
	static const uint8_t raw[] = {0x08, 0x00, 0x01, 'r'};

	switch (step) {
	case 0:
		st_pw_byte(w, ST_PROP_PAYLOAD_FORMAT, 1);
		break;
	case 1:
		st_pw_u16(w, ST_PROP_TOPIC_ALIAS, 0x0102);
		break;
	case 2:
		st_pw_u32(w, ST_PROP_MESSAGE_EXPIRY, 0x01020304);
		break;
	case 3:
		st_pw_varint(w, ST_PROP_SUBSCRIPTION_ID, 1);
		break;
	case 4:
		st_pw_varint(w, ST_PROP_SUBSCRIPTION_ID, 16384);
		break;
	case 5:
		st_pw_str(w, ST_PROP_CORRELATION_DATA, (struct st_bytes){blob, sizeof(blob)});
		break;
	case 6:
		st_pw_varint(w, ST_PROP_SUBSCRIPTION_ID, 268435455);
		break;
	case 7:
		st_pw_str(w, ST_PROP_CONTENT_TYPE, (struct st_bytes){(const uint8_t *)"t", 1});
		break;
	case 8:
		st_pw_pair(w, ST_PROP_USER_PROPERTY, (struct st_bytes){(const uint8_t *)"k", 1},
		           (struct st_bytes){(const uint8_t *)"vv", 2});
		break;
	case 9:
		st_pw_raw(w, (struct st_bytes){raw, sizeof(raw)});
		break;
	case 10:
		st_pw_pair(w, ST_PROP_USER_PROPERTY, (struct st_bytes){NULL, 0},
		           (struct st_bytes){NULL, 0});
		break;
	default:
		CU_FAIL("write_step");
		break;
	}
}

#define WRITE_STEPS 11

static void test_writer_overflow(void)
{
	static const size_t sizes[WRITE_STEPS] = {2, 3, 5, 2, 4, 103, 5, 4, 8, 4, 5};
	uint8_t full[256], buf[256 + 16];
	struct st_prop_writer w;
	size_t total = 0;

	st_pw_init(&w, full, sizeof(full));
	for (int s = 0; s < WRITE_STEPS; s++) {
		write_step(&w, s);
		total += sizes[s];
		CU_ASSERT_EQUAL(st_pw_len(&w), total);
	}
	CU_ASSERT_FALSE(w.overflow);
	/* The block parses as what was written (a PUBLISH may carry all of it). */
	struct st_props out;

	CU_ASSERT_EQUAL(
	        st_props_parse((struct st_bytes){full, (uint32_t)total}, ST_PCTX_PUBLISH, &out),
	        ST_OK);
	CU_ASSERT_EQUAL(out.subscription_id_count, 3);
	CU_ASSERT_EQUAL(out.topic_alias, 0x0102);
	for (size_t cap = 0; cap <= total; cap++) {
		size_t fit = 0; /* the writes that fit before the first that did not */

		for (int s = 0; s < WRITE_STEPS && fit + sizes[s] <= cap; s++)
			fit += sizes[s];
		memset(buf, 0xEE, sizeof(buf));
		st_pw_init(&w, buf, cap);
		for (int s = 0; s < WRITE_STEPS; s++)
			write_step(&w, s);
		CU_ASSERT_EQUAL(w.overflow, cap < total);
		CU_ASSERT_EQUAL(st_pw_len(&w), fit);
		CU_ASSERT(memcmp(buf, full, fit) == 0);
		/* After the first miss nothing is written, even what would still fit. */
		for (size_t i = fit; i < sizeof(buf); i++)
			CU_ASSERT_EQUAL_FATAL(buf[i], 0xEE);
	}
	/* Values without an encoding fail like a full buffer. */
	static uint8_t big[65536];
	struct st_bytes huge = {big, sizeof(big)}, max = {big, 65535}, k = {big, 1};
	static uint8_t room[70000 * 2 + 16];

	st_pw_init(&w, room, sizeof(room));
	st_pw_str(&w, ST_PROP_CORRELATION_DATA, max);
	CU_ASSERT_FALSE(w.overflow);
	CU_ASSERT_EQUAL(st_pw_len(&w), st_prop_size_str(max));
	CU_ASSERT_EQUAL(st_prop_size_str(max), 3 + 65535);
	st_pw_str(&w, ST_PROP_CORRELATION_DATA, huge);
	CU_ASSERT_TRUE(w.overflow);
	st_pw_init(&w, room, sizeof(room));
	st_pw_pair(&w, ST_PROP_USER_PROPERTY, k, huge);
	CU_ASSERT_TRUE(w.overflow);
	st_pw_init(&w, room, sizeof(room));
	st_pw_pair(&w, ST_PROP_USER_PROPERTY, huge, k);
	CU_ASSERT_TRUE(w.overflow);
	st_pw_init(&w, room, sizeof(room));
	st_pw_pair(&w, ST_PROP_USER_PROPERTY, max, max);
	CU_ASSERT_FALSE(w.overflow);
	CU_ASSERT_EQUAL(st_pw_len(&w), st_prop_size_pair(max, max));
	st_pw_init(&w, room, sizeof(room));
	st_pw_varint(&w, ST_PROP_SUBSCRIPTION_ID, 268435456);
	CU_ASSERT_TRUE(w.overflow);
	CU_ASSERT_EQUAL(st_pw_len(&w), 0);
}

/* --- golden bytes of real clients and of Mosquitto ----------------------------------------- */

struct golden {
	const char *what;       /* who sent it */
	const char *hex;        /* the whole packet */
	bool will;              /* the CONNECT's will properties, not its own */
	int ctx;                /* st_prop_ctx of the block */
	struct exp_prop exp[8]; /* its properties in order */
};

static const struct golden goldens[] = {
        {"mosquitto_sub -V mqttv5 CONNECT with -D connect ...",
         "103700044d5154540502003c24210014270001000022000a190117002600036170700008737461726c"
         "696e671100000e100006636170737562",
         false,
         ST_PCTX_CONNECT,
         {{.id = 0x21, .value = 20},
          {.id = 0x27, .value = 65536},
          {.id = 0x22, .value = 10},
          {.id = 0x19, .value = 1},
          {.id = 0x17, .value = 0},
          {.id = 0x26, .s = "app", .s2 = "starling"},
          {.id = 0x11, .value = 3600}}},
        {"mosquitto 2.0.11 CONNACK",
         "200900000622000a210014",
         false,
         ST_PCTX_CONNACK,
         {{.id = 0x22, .value = 10}, {.id = 0x21, .value = 20}}},
        {"mosquitto_sub SUBSCRIBE with a user property",
         "8218000109260002736b00027376000973656e736f72732f2301",
         false,
         ST_PCTX_SUBSCRIBE,
         {{.id = 0x26, .s = "sk", .s2 = "sv"}}},
        {"mosquitto_pub PUBLISH with every message property",
         "325e000a73656e736f72732f74310001450300106170706c69636174696f6e2f6a736f6e2600047369"
         "746500023432260004756e69740001430101020000003c08000a7265706c792f686572650900066162"
         "633132337b2274223a32312e357d",
         false,
         ST_PCTX_PUBLISH,
         {{.id = 0x03, .s = "application/json"},
          {.id = 0x26, .s = "site", .s2 = "42"},
          {.id = 0x26, .s = "unit", .s2 = "C"},
          {.id = 0x01, .value = 1},
          {.id = 0x02, .value = 60},
          {.id = 0x08, .s = "reply/here"},
          {.id = 0x09, .s = "abc123"}}},
        {"mosquitto 2.0.11 forwarding it (its own order)",
         "325e000a73656e736f72732f74310001450300106170706c69636174696f6e2f6a736f6e2600047369"
         "746500023432260004756e6974000143010108000a7265706c792f68657265090006616263313233"
         "020000003c7b2274223a32312e357d",
         false,
         ST_PCTX_PUBLISH,
         {{.id = 0x03, .s = "application/json"},
          {.id = 0x26, .s = "site", .s2 = "42"},
          {.id = 0x26, .s = "unit", .s2 = "C"},
          {.id = 0x01, .value = 1},
          {.id = 0x08, .s = "reply/here"},
          {.id = 0x09, .s = "abc123"},
          {.id = 0x02, .value = 60}}},
        {"mosquitto_pub CONNECT will properties",
         "104000044d5154540506003c032100140007636170707562321b03000a746578742f706c61696e1800"
         "000005260002776b00027776000677696c6c2f740003627965",
         true,
         ST_PCTX_WILL,
         {{.id = 0x03, .s = "text/plain"},
          {.id = 0x18, .value = 5},
          {.id = 0x26, .s = "wk", .s2 = "wv"}}},
        {"mosquitto_pub PUBLISH with a topic alias",
         "3011000a73656e736f72732f74320323000378",
         false,
         ST_PCTX_PUBLISH,
         {{.id = 0x23, .value = 3}}},
        {"mosquitto_pub DISCONNECT with -D disconnect ...",
         "e010000e1100000000260002646b00026476",
         false,
         ST_PCTX_DISCONNECT,
         {{.id = 0x11, .value = 0}, {.id = 0x26, .s = "dk", .s2 = "dv"}}},
        {"mosquitto 2.0.11 CONNACK with an assigned client identifier",
         "203500003222000a1200296175746f2d44464437303235432d324345322d423332362d453046342d42"
         "3334324445453932344144210014",
         false,
         ST_PCTX_CONNACK,
         {{.id = 0x22, .value = 10},
          {.id = 0x12, .s = "auto-DFD7025C-2CE2-B326-E0F4-B342DEE924AD"},
          {.id = 0x21, .value = 20}}},
        {"paho SUBSCRIBE with subscription identifier 300",
         "82220002150bac0226000666696c74657200076d756c74692f2300076d756c74692f2301",
         false,
         ST_PCTX_SUBSCRIBE,
         {{.id = 0x0B, .value = 300}, {.id = 0x26, .s = "filter", .s2 = "multi/#"}}},
        {"mosquitto 2.0.11 PUBLISH with subscription identifier 300 and user properties",
         "322900076d756c74692f780002180bac02260001610001312600016200013226000161000133686"
         "56c6c6f",
         false,
         ST_PCTX_PUBLISH,
         {{.id = 0x0B, .value = 300},
          {.id = 0x26, .s = "a", .s2 = "1"},
          {.id = 0x26, .s = "b", .s2 = "2"},
          {.id = 0x26, .s = "a", .s2 = "3"}}},
        {"paho UNSUBSCRIBE with a user property",
         "a21800040c2600037768790004646f6e6500076d756c74692f2b",
         false,
         ST_PCTX_UNSUBSCRIBE,
         {{.id = 0x26, .s = "why", .s2 = "done"}}},
        {"paho CONNECT with authentication method and data",
         "103300044d5154540502003c1f15000b534352414d2d5348412d3116000e0001636c69656e742d6669"
         "727374000761757468636170",
         false,
         ST_PCTX_CONNECT,
         {{.id = 0x15, .s = "SCRAM-SHA-1"},
          {.id = 0x16,
           .s = "\x00\x01"
                "client-first",
           .slen = 14}}},
};

static struct st_bytes golden_block(const struct st_packet *p, bool will)
{
	switch (p->type) {
	case ST_CONNECT:
		return will ? p->connect.will_props : p->connect.props;
	case ST_CONNACK:
		return p->connack.props;
	case ST_PUBLISH:
		return p->publish.props;
	case ST_SUBSCRIBE:
	case ST_UNSUBSCRIBE:
		return p->subscribe.props;
	case ST_DISCONNECT:
		return p->disconnect.props;
	default:
		CU_FAIL("golden_block: unexpected packet");
		return (struct st_bytes){NULL, 0};
	}
}

static void test_goldens(void)
{
	struct tu_guard g = {0}, gp = {0};

	for (size_t i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
		const struct golden *gd = &goldens[i];
		uint8_t pkt[256];
		size_t n = unhex(gd->hex, pkt, sizeof(pkt)), used = 0, ne = 0;
		struct st_packet p;
		const uint8_t *copy = tu_guard_copy(&gp, pkt, n);

		CU_ASSERT_EQUAL_FATAL(st_decode_packet(copy, n, ST_MQTT_5, 0, &p, &used), ST_OK);
		CU_ASSERT_EQUAL(used, n);
		struct st_bytes blk = golden_block(&p, gd->will);
		size_t bounds[16] = {0}, nb = 1;
		struct st_prop_iter it;
		struct st_prop prop;

		while (ne < 8 && gd->exp[ne].id)
			ne++;
		unsigned failures = CU_get_number_of_failures();

		check_block(&g, blk.ptr, blk.len, gd->ctx, gd->exp, ne);
		st_prop_iter_init(&it, blk);
		while (st_prop_iter_next(&it, &prop) && nb < 16) {
			bounds[nb] = bounds[nb - 1] + prop.raw.len;
			nb++;
		}
		check_cuts(&g, blk.ptr, blk.len, gd->ctx, bounds, nb);
		if (CU_get_number_of_failures() != failures)
			fprintf(stderr, "\ngolden %s: failed\n", gd->what);
	}
	tu_guard_release(&g);
	tu_guard_release(&gp);
}

/* --- random mutations ------------------------------------------------------------------------ */

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Mutated blocks (bit flips, cuts, inserted bytes) parsed as random packets: never a crash or a
 * read past the end; an accepted block walks to its end exactly, its user properties and
 * subscription identifiers counted as parsed, and its raws re-written give it back.
 */
static void test_mutations(void)
{
	struct tu_guard g = {0};
	uint64_t seed = 0x9E3779B97F4A7C15ull;
	unsigned accepted = 0;
	struct blk base[NCTX];

	for (int ctx = 0; ctx < NCTX; ctx++) {
		base[ctx].n = 0;
		for (size_t r = 0; r < NROWS; r++) {
			if (spec_ctx_mask(&spec_rows[r]) & (1u << ctx)) {
				struct exp_prop e = sample(spec_rows[r].id, (unsigned)r);

				put_prop(&base[ctx], &e);
			}
		}
	}
	for (int iter = 0; iter < 30000; iter++) {
		uint64_t r = xorshift(&seed);
		int ctx = (int)(r % NCTX);
		struct blk k = base[(r >> 8) % NCTX];

		for (int m = 0; m < 1 + (int)((r >> 16) % 3); m++) {
			uint64_t q = xorshift(&seed);
			size_t at = k.n ? (size_t)(q % k.n) : 0;

			if ((q >> 32) % 6 == 0)
				k.n = at; /* cut */
			else if ((q >> 32) % 6 == 1 && k.n < BLK_MAX - 1)
				memmove(k.b + at + 1, k.b + at, k.n++ - at),
				        k.b[at] = (uint8_t)(q >> 40);
			else if (k.n)
				k.b[at] ^= (uint8_t)(1u << ((q >> 40) % 8));
		}
		struct st_props out;
		int rc = parse_guarded(&g, k.b, k.n, ctx, &out);

		CU_ASSERT(rc <= 0 && rc >= ST_ERR__MIN);
		if (rc != ST_OK)
			continue;
		accepted++;
		const uint8_t *copy = tu_guard_copy(&g, k.b, k.n);
		struct st_prop_iter it;
		struct st_prop p;
		uint8_t again[BLK_MAX];
		struct st_prop_writer w;
		uint32_t users = 0, sub_ids = 0;
		size_t walked = 0;

		st_pw_init(&w, again, sizeof(again));
		st_prop_iter_init(&it, (struct st_bytes){copy, (uint32_t)k.n});
		while (st_prop_iter_next(&it, &p)) {
			CU_ASSERT_FATAL(p.raw.ptr == copy + walked);
			walked += p.raw.len;
			users += p.id == ST_PROP_USER_PROPERTY;
			sub_ids += p.id == ST_PROP_SUBSCRIPTION_ID;
			st_pw_raw(&w, p.raw);
		}
		CU_ASSERT_EQUAL(walked, k.n);
		CU_ASSERT_EQUAL(users, out.user_count);
		CU_ASSERT_EQUAL(sub_ids, out.subscription_id_count);
		CU_ASSERT(st_pw_len(&w) == k.n && (k.n == 0 || memcmp(again, k.b, k.n) == 0));
	}
	CU_ASSERT(accepted > 1000); /* the mutations do not all produce garbage */
	tu_guard_release(&g);
}

static const struct tu_test writer_tests[] = {
        {"round trip on every packet", test_roundtrip_every_packet},
        {"user property order, several subscription ids", test_order_and_sub_ids},
        {"empty block", test_empty_block},
        {"writer overflow at every cut", test_writer_overflow},
        {"golden bytes of mosquitto and paho", test_goldens},
        {"random mutations", test_mutations},
        {NULL, NULL},
};

int main(void)
{
	tu_add_suite("props", writer_tests);
	return tu_run_registry();
}
