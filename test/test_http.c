/*
 * Tests of the HTTP request head parser (src/http/request.c) and response heads
 * (src/http/response.c). Every input is parsed from a guard buffer that ends at an unreadable
 * page, whole and at every truncation: a prefix of a valid head is "need more", never an
 * error or a read past the end, and a request split at any byte parses the same once whole.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "http/request.h"
#include "http/response.h"
#include "testutil.h"

#define MAX 8192

static struct tu_guard guard;

static long parse(const char *s, size_t len, struct http_request *req)
{
	const uint8_t *p = tu_guard_copy(&guard, s, len);

	return http_request_parse(p, len, MAX, req);
}

static long parse_s(const char *s, struct http_request *req)
{
	return parse(s, strlen(s), req);
}

/* Every proper prefix of s needs more; the whole parses to its full length. */
static void check_prefixes(const char *s)
{
	struct http_request req;
	size_t len = strlen(s);

	for (size_t n = 0; n < len; n++) {
		long ret = parse(s, n, &req);

		CU_ASSERT_EQUAL(ret, 0);
		if (ret != 0)
			printf("\nprefix %zu of %s: %ld\n", n, s, ret);
	}
	CU_ASSERT_EQUAL(parse(s, len, &req), (long)len);
}

static void test_get(void)
{
	const char *s = "GET /metrics HTTP/1.1\r\nHost: localhost:9100\r\n"
	                "User-Agent: Prometheus/2.42.0\r\nAccept: text/plain;version=0.0.4\r\n"
	                "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n";
	struct http_request req;

	CU_ASSERT_EQUAL(parse_s(s, &req), (long)strlen(s));
	CU_ASSERT(http_slice_is(req.method, "GET"));
	CU_ASSERT(http_slice_is(req.target, "/metrics"));
	CU_ASSERT(http_slice_is(req.path, "/metrics"));
	CU_ASSERT_EQUAL(req.minor, 1);
	CU_ASSERT(req.keep_alive);
	CU_ASSERT(!req.has_body);
	CU_ASSERT_EQUAL(req.head_len, strlen(s));
	check_prefixes(s);
}

static void test_query_and_pipelined(void)
{
	const char *s = "GET /metrics?name[]=x HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n";
	struct http_request req;
	long ret = parse_s(s, &req);

	/* The head ends at the first empty line; what follows is the next request's. */
	CU_ASSERT_EQUAL(ret, (long)(strstr(s, "\r\n\r\n") - s + 4));
	CU_ASSERT(http_slice_is(req.target, "/metrics?name[]=x"));
	CU_ASSERT(http_slice_is(req.path, "/metrics"));
}

static void test_http10_and_connection(void)
{
	struct http_request req;

	/* HTTP/1.0: no Host needed, closes by default, keep-alive when asked. */
	CU_ASSERT(parse_s("GET /metrics HTTP/1.0\r\n\r\n", &req) > 0);
	CU_ASSERT_EQUAL(req.minor, 0);
	CU_ASSERT(!req.keep_alive);
	CU_ASSERT(parse_s("GET /metrics HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req) > 0);
	CU_ASSERT(req.keep_alive);
	check_prefixes("GET /metrics HTTP/1.0\r\n\r\n");
	/* HTTP/1.1: open by default, `close` among other options closes. */
	CU_ASSERT(parse_s("GET / HTTP/1.1\r\nHost: h\r\nConnection: TE, close\r\n\r\n", &req) > 0);
	CU_ASSERT(!req.keep_alive);
	/* Bare LFs end lines too (RFC 9112 2.2), and blanks around values are trimmed. */
	CU_ASSERT(parse_s("GET /x HTTP/1.1\nHost:h\nConnection:   close \n\n", &req) > 0);
	CU_ASSERT(!req.keep_alive);
	CU_ASSERT(http_slice_is(req.path, "/x"));
	check_prefixes("GET /x HTTP/1.1\nHost:h\n\n");
	/* Empty lines before the request line are skipped. */
	CU_ASSERT_EQUAL(parse_s("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", &req), 31);
	CU_ASSERT(http_slice_is(req.method, "GET"));
}

static void test_body(void)
{
	struct http_request req;

	CU_ASSERT(parse_s("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", &req) > 0);
	CU_ASSERT(!req.has_body);
	CU_ASSERT(parse_s("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\n", &req) > 0);
	CU_ASSERT(req.has_body);
	CU_ASSERT(http_slice_is(req.method, "POST"));
	CU_ASSERT(parse_s("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", &req) >
	          0);
	CU_ASSERT(req.has_body);
	CU_ASSERT_EQUAL(parse_s("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", &req),
	                -400);
	CU_ASSERT_EQUAL(parse_s("GET / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", &req),
	                -400);
}

static void test_bad(void)
{
	static const char *const bad[] = {
	        "GET /metrics\r\n\r\n",                         /* no version */
	        "GET  /metrics HTTP/1.1\r\nHost: h\r\n\r\n",    /* two blanks */
	        "GET /metrics  HTTP/1.1\r\nHost: h\r\n\r\n",    /* two blanks after the target */
	        " GET / HTTP/1.1\r\nHost: h\r\n\r\n",           /* blank before the method */
	        "G(T / HTTP/1.1\r\nHost: h\r\n\r\n",            /* not a token */
	        "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n",       /* control in the target */
	        "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",    /* raw UTF-8 in the target */
	        "GET / HTTP/1.1\r\n\r\n",                       /* HTTP/1.1 without Host */
	        "GET / HTTP/1.1\r\nHost : h\r\n\r\n",           /* blank before the colon */
	        "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", /* obsolete folding */
	        "GET / HTTP/1.1\r\nHost h\r\n\r\n",             /* no colon */
	        "GET / HTTP/1.1\r\nHost: h\x7f\r\n\r\n",        /* DEL in a value */
	        "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",         /* bare CR in a value */
	        "GET / HTTP/1.x\r\nHost: h\r\n\r\n",            /* not a version */
	        "GET / http/1.1\r\nHost: h\r\n\r\n",            /* version is case-sensitive */
	        "\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\n\n",     /* an MQTT CONNECT */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_request req;
		size_t len = i == sizeof(bad) / sizeof(bad[0]) - 1 ? 14 : strlen(bad[i]);
		long ret = parse(bad[i], len, &req);

		CU_ASSERT_EQUAL(ret, -400);
		if (ret != -400)
			printf("\nbad input %zu: %ld\n", i, ret);
	}
}

static void test_version(void)
{
	struct http_request req;

	CU_ASSERT_EQUAL(parse_s("GET / HTTP/2.0\r\nHost: h\r\n\r\n", &req), -505);
	CU_ASSERT_EQUAL(parse_s("GET / HTTP/1.2\r\nHost: h\r\n\r\n", &req), -505);
	CU_ASSERT_EQUAL(parse_s("GET / HTTP/0.9\r\n\r\n", &req), -505);
}

static void test_oversize(void)
{
	static char big[MAX + 64];
	struct http_request req;
	size_t n;

	/* A head that does not end within the bound: need more below it, 431 at it. */
	n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ");
	memset(big + n, 'a', sizeof(big) - n);
	CU_ASSERT_EQUAL(parse(big, MAX - 1, &req), 0);
	CU_ASSERT_EQUAL(parse(big, MAX, &req), -431);
	CU_ASSERT_EQUAL(parse(big, MAX + 10, &req), -431);
	/* One that ends past the bound is refused too, even when all of it is there. */
	memcpy(big + MAX + 10, "\r\n\r\n", 4);
	CU_ASSERT_EQUAL(parse(big, MAX + 14, &req), -431);
	/* One that ends exactly at the bound is taken. */
	memcpy(big + MAX - 4, "\r\n\r\n", 4);
	CU_ASSERT_EQUAL(parse(big, MAX, &req), MAX);
	/* Only empty lines: the bound applies to them as well. */
	memset(big, '\n', MAX);
	CU_ASSERT_EQUAL(parse(big, MAX, &req), -431);
}

/* A request split at every byte, fed as a reader would: the same result once whole. */
static void test_split(void)
{
	const char *s = "HEAD /metrics HTTP/1.1\r\nHost: [::1]:9100\r\nAccept: */*\r\n\r\n";
	size_t len = strlen(s);

	for (size_t cut = 1; cut < len; cut++) {
		struct http_request req;

		CU_ASSERT_EQUAL(parse(s, cut, &req), 0);
		CU_ASSERT_EQUAL(parse(s, len, &req), (long)len);
		CU_ASSERT(http_slice_is(req.method, "HEAD"));
	}
}

static void test_response(void)
{
	char buf[HTTP_RESPONSE_HEAD_MAX];
	size_t n;

	n = http_response_head(buf, sizeof(buf), 200, "text/plain; version=0.0.4; charset=utf-8",
	                       1234, true, NULL);
	CU_ASSERT_EQUAL(n, strlen(buf));
	CU_ASSERT_STRING_EQUAL(buf, "HTTP/1.1 200 OK\r\n"
	                            "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
	                            "Content-Length: 1234\r\n\r\n");
	n = http_response_head(buf, sizeof(buf), 405, NULL, 0, false, "Allow: GET, HEAD\r\n");
	CU_ASSERT_STRING_EQUAL(buf, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n"
	                            "Connection: close\r\nAllow: GET, HEAD\r\n\r\n");
	CU_ASSERT_EQUAL(n, strlen(buf));
	/* Too small a buffer: nothing, never a truncated head. */
	CU_ASSERT_EQUAL(http_response_head(buf, 20, 200, NULL, 0, true, NULL), 0);
	CU_ASSERT_STRING_EQUAL(http_reason(431), "Request Header Fields Too Large");
	CU_ASSERT_STRING_EQUAL(http_reason(505), "HTTP Version Not Supported");
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"GET, every prefix", test_get},
	        {"query string, pipelined request", test_query_and_pipelined},
	        {"HTTP/1.0, Connection, bare LF, leading empty lines", test_http10_and_connection},
	        {"requests with a body", test_body},
	        {"malformed heads are 400", test_bad},
	        {"other versions are 505", test_version},
	        {"oversized heads are 431", test_oversize},
	        {"split at every byte", test_split},
	        {"response heads", test_response},
	        {NULL, NULL},
	};
	int ret;

	tu_add_suite("http", tests);
	ret = tu_run_registry();
	tu_guard_release(&guard);
	return ret;
}
