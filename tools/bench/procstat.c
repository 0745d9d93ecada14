/*
 * /proc readers for procstat.h. Each call opens, reads and closes the file: they run a handful
 * of times per benchmark, never on the message path. /proc/PID/stat is parsed after the last
 * ')' because the command name in parentheses may itself contain spaces and parentheses.
 */
#include "procstat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Reads /proc/PID/NAME into buf (NUL-terminated). Returns bytes read or a negative errno. */
static int read_proc_file(pid_t pid, const char *name, char *buf, size_t cap)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ssize_t n = read(fd, buf, cap - 1);
	int err = errno;
	close(fd);
	if (n < 0)
		return -err;
	buf[n] = '\0';
	return (int)n;
}

int bench_proc_cpu_ns(pid_t pid, uint64_t *cpu_ns)
{
	char buf[1024];
	int n = read_proc_file(pid, "stat", buf, sizeof(buf));
	if (n < 0)
		return n;
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return -EINVAL;
	/* After ") " come field 3 (state) onwards; utime and stime are fields 14 and 15. */
	p++;
	unsigned long long utime = 0, stime = 0;
	for (int field = 3; field <= 15; field++) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return -EINVAL;
		char *end = p;
		if (field == 14 || field == 15) {
			unsigned long long v = strtoull(p, &end, 10);
			if (field == 14)
				utime = v;
			else
				stime = v;
		} else {
			while (*end != ' ' && *end != '\0')
				end++;
		}
		p = end;
	}
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		hz = 100;
	*cpu_ns = (utime + stime) * (1000000000ull / (unsigned long long)hz);
	return 0;
}

int bench_proc_rss_kb(pid_t pid, uint64_t *rss_kb)
{
	char buf[4096];
	int n = read_proc_file(pid, "status", buf, sizeof(buf));
	if (n < 0)
		return n;
	const char *p = strstr(buf, "\nVmRSS:");
	if (p == NULL)
		return -EINVAL;
	*rss_kb = strtoull(p + 7, NULL, 10);
	return 0;
}

uint64_t bench_self_cpu_ns(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	uint64_t us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
	              (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
	return us * 1000u;
}
