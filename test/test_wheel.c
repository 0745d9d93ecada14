/*
 * Tests of the timing wheel (src/base/wheel.c) against a plain model: a deadline per timer and
 * whether it is armed. Random adds (near, far beyond one turn, already past), removals and
 * advances by random steps (some longer than a whole turn); after each advance exactly the
 * armed timers whose deadline's tick has come must have fired, each once. Some callbacks re-arm
 * their timer, as the broker's lazy keep-alive timers do.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "base/wheel.h"
#include "starling/error.h"
#include "testutil.h"

#define TIMERS 300
#define SLOTS  64
#define TICK   10

struct timer {
	struct wheel_node node; /* in the wheel */
	uint64_t due;           /* model: deadline */
	uint64_t tick;          /* model: the tick it fires at (a past deadline: the next tick) */
	bool armed;             /* model: armed */
	unsigned fired;         /* times fired in this advance */
};

static struct timer timers[TIMERS];
static struct wheel wh;
static uint64_t now;

/* The tick a timer due at `due` fires at, if added now: the hand never goes back. */
static uint64_t model_tick(uint64_t due)
{
	return due / TICK > wh.tick ? due / TICK : wh.tick + 1;
}

static void fire(void *ctx, struct wheel_node *n)
{
	struct timer *t = (struct timer *)n;

	(void)ctx;
	t->fired++;
	CU_ASSERT(t->armed);
	/* A timer fires when its tick comes, not before. */
	CU_ASSERT(t->tick <= now / TICK);
	t->armed = false;
	/* One in four re-arms itself further on, from inside the callback. */
	if (t >= timers && t < timers + TIMERS && (t - timers) % 4 == 0) {
		t->due = now + 1 + tu_rand(SLOTS * TICK * 3);
		t->tick = model_tick(t->due);
		t->armed = true;
		wheel_add(&wh, &t->node, t->due);
	}
}

static void test_against_model(void)
{
	size_t armed = 0;

	memset(timers, 0, sizeof(timers));
	now = 1000;
	srand(11);
	CU_ASSERT_EQUAL_FATAL(wheel_init(&wh, SLOTS, TICK, now), ST_OK);
	for (unsigned step = 0; step < 20000; step++) {
		struct timer *t = &timers[tu_rand(TIMERS)];
		unsigned op = tu_rand(10);

		if (op < 5 && !t->armed) {
			/* Near, several turns away, or already due. */
			uint64_t d = op == 0   ? 0
			             : op == 1 ? tu_rand(SLOTS * TICK * 5)
			                       : tu_rand(200);

			t->due = now + d - (op == 4 ? tu_rand(50) : 0);
			t->tick = model_tick(t->due);
			t->armed = true;
			wheel_add(&wh, &t->node, t->due);
		} else if (op < 7 && t->armed) {
			wheel_del(&wh, &t->node);
			t->armed = false;
		} else if (op >= 7) {
			now += op == 9 && tu_rand(20) == 0 ? SLOTS * TICK * 2 + tu_rand(999)
			                                   : tu_rand(TICK * 3);
			for (unsigned i = 0; i < TIMERS; i++)
				timers[i].fired = 0;
			wheel_advance(&wh, now, fire, NULL);
			for (unsigned i = 0; i < TIMERS; i++) {
				struct timer *x = &timers[i];

				/* Fired at most once; whatever was due by this tick fired. */
				CU_ASSERT(x->fired <= 1);
				if (x->armed && !x->fired && x->tick <= now / TICK)
					CU_FAIL("a due timer did not fire");
			}
		}
		armed = 0;
		for (unsigned i = 0; i < TIMERS; i++) {
			armed += timers[i].armed;
			CU_ASSERT_EQUAL(wheel_linked(&timers[i].node), timers[i].armed);
		}
		CU_ASSERT_EQUAL(wh.count, armed);
	}
	wheel_fini(&wh);
}

static void test_far_and_past(void)
{
	struct timer far = {0}, past = {0};

	now = 50;
	CU_ASSERT_EQUAL_FATAL(wheel_init(&wh, 8, 10, now), ST_OK);
	/* Five turns away: walked past four times, fired on the fifth. */
	far.due = now + 8 * 10 * 5;
	far.tick = far.due / 10;
	far.armed = true;
	wheel_add(&wh, &far.node, far.due);
	past.due = now - 40;
	past.tick = now / 10 + 1;
	past.armed = true;
	wheel_add(&wh, &past.node, past.due);
	now += 10;
	CU_ASSERT_EQUAL(wheel_advance(&wh, now, fire, NULL), 1);
	CU_ASSERT_EQUAL(past.fired, 1);
	for (unsigned turn = 0; turn < 4; turn++) {
		now += 80;
		wheel_advance(&wh, now, fire, NULL);
		CU_ASSERT_EQUAL(far.fired, 0);
	}
	now += 80;
	CU_ASSERT_EQUAL(wheel_advance(&wh, now, fire, NULL), 1);
	CU_ASSERT_EQUAL(far.fired, 1);
	CU_ASSERT_EQUAL(wh.count, 0);
	wheel_fini(&wh);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"against a model", test_against_model},
	        {"several turns away, already past", test_far_and_past},
	        {NULL, NULL},
	};

	tu_add_suite("wheel", tests);
	return tu_run_registry();
}
