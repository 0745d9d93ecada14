/*
 * The retained messages' bucket: its name and the expiry a node computes when it reads an
 * entry (retained.h).
 */
#include "retained.h"

#include <string.h>

#define BUCKET_PREFIX "retained-"

long cluster_retained_bucket(const char *name, size_t len, char *buf, size_t cap)
{
	size_t n = sizeof(BUCKET_PREFIX) - 1;

	if (cap < n + 2 || len == 0)
		return -1;
	memcpy(buf, BUCKET_PREFIX, n);
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		             (c >= '0' && c <= '9') || c == '-';

		if (n + (plain ? 1 : 2) + 1 > cap)
			return -1;
		if (plain) {
			buf[n++] = c;
		} else if (c == '_' || c == '.') {
			buf[n++] = '_';
			buf[n++] = c == '_' ? '_' : '-';
		} else {
			return -1;
		}
	}
	buf[n] = '\0';
	return (long)n;
}

int64_t cluster_retained_left_ms(uint32_t expiry_s, int64_t created_ns, int64_t now_ns)
{
	int64_t age_ms, left_ms;

	if (expiry_s == 0)
		return 0;
	age_ms = now_ns > created_ns ? (now_ns - created_ns) / 1000000 : 0;
	left_ms = (int64_t)expiry_s * 1000 - age_ms;
	return left_ms > 0 ? left_ms : -1;
}
