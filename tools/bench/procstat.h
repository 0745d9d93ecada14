/*
 * What starling-bench reads about the broker from /proc (--broker-pid): CPU time from
 * /proc/PID/stat (utime + stime of all its threads, in clock ticks) and resident memory from
 * /proc/PID/status (VmRSS). The bench samples both at the start and the end of the measurement
 * window and divides the CPU time by the messages delivered in it.
 */
#ifndef STARLING_BENCH_PROCSTAT_H
#define STARLING_BENCH_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

/*
 * CPU time (user + system) the process has used, in nanoseconds. Returns 0 and sets *cpu_ns,
 * or a negative errno (-ESRCH when the process is gone).
 */
int bench_proc_cpu_ns(pid_t pid, uint64_t *cpu_ns);

/* Resident set size in KiB (VmRSS). Returns 0 or a negative errno. */
int bench_proc_rss_kb(pid_t pid, uint64_t *rss_kb);

/* CPU time this process has used so far, in nanoseconds (getrusage). */
uint64_t bench_self_cpu_ns(void);

#endif
