/*
 * Unit tests of what the broker keeps in a subscription's index data (src/broker/subdata.h):
 * the options byte, granted QoS and identifier packing, and the options a Mosquitto bridge's
 * 3.x subscription gets (No Local and Retain As Published, not No Local when shared).
 */
#include "broker/subdata.h"
#include "testutil.h"

static void test_pack(void)
{
	uint64_t d = subdata_make(ST_SUBOPT_NO_LOCAL | 2, 0xfffffffeu);

	CU_ASSERT_EQUAL(subdata_qos(d), 2);
	CU_ASSERT_EQUAL(subdata_options(d), ST_SUBOPT_NO_LOCAL | 2);
	CU_ASSERT_EQUAL(subdata_sub_id(d), 0xfffffffeu);
	CU_ASSERT_EQUAL(d & (SUBDATA_SHARED | SUBDATA_ACL), 0);
	CU_ASSERT_EQUAL(subdata_sub_id(subdata_make(0xff, 0)), 0);
}

static void test_bridge_options(void)
{
	for (uint8_t qos = 0; qos <= 2; qos++) {
		uint8_t o = subdata_bridge_options(qos, false);

		/* The granted QoS is untouched; both options set; Retain Handling 0. */
		CU_ASSERT_EQUAL(o & ST_SUBOPT_QOS_MASK, qos);
		CU_ASSERT(o & ST_SUBOPT_NO_LOCAL);
		CU_ASSERT(o & ST_SUBOPT_RETAIN_AS_PUB);
		CU_ASSERT_EQUAL(o & ST_SUBOPT_RETAIN_HANDLING, 0);
		CU_ASSERT_EQUAL(o & 0xC0, 0);
		/* Shared: Retain As Published only [MQTT-3.8.3-4]. */
		o = subdata_bridge_options(qos, true);
		CU_ASSERT_EQUAL(o, qos | ST_SUBOPT_RETAIN_AS_PUB);
	}
	/* Idempotent: a bridge's MQTT 5 style options stay as they are. */
	CU_ASSERT_EQUAL(subdata_bridge_options(ST_SUBOPT_NO_LOCAL | ST_SUBOPT_RETAIN_AS_PUB, false),
	                ST_SUBOPT_NO_LOCAL | ST_SUBOPT_RETAIN_AS_PUB);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"pack and unpack", test_pack},
	        {"a bridge's subscription options", test_bridge_options},
	        {NULL, NULL},
	};

	tu_add_suite("subdata", tests);
	return tu_run_registry();
}
