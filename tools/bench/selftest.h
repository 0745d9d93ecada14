/*
 * The bench's self-test (selftest.c), run by `starling-bench selftest`.
 */
#ifndef STARLING_BENCH_SELFTEST_H
#define STARLING_BENCH_SELFTEST_H

/* Runs every check; prints a summary line. Returns 0 if all held, 1 otherwise. */
int bench_selftest(void);

#endif
