/*
 * Tests of the WebSocket opening handshake (src/http/upgrade.c) on heads parsed by the request
 * parser (its own tests are test_http.c), and of the fields the parser keeps for it: checked
 * against RFC 6455's own example (section 1.3) and each way a request can fail to be an upgrade.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "http/request.h"
#include "http/upgrade.h"
#include "testutil.h"

static const char *const protos[] = {"mqtt", "mqttv3.1", NULL};

#define RFC_REQUEST                                                                                \
	"GET /chat HTTP/1.1\r\n"                                                                   \
	"Host: server.example.com\r\n"                                                             \
	"Upgrade: websocket\r\n"                                                                   \
	"Connection: keep-alive, Upgrade\r\n"                                                      \
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                                          \
	"Origin: http://example.com\r\n"                                                           \
	"Sec-WebSocket-Protocol: chat, mqtt\r\n"                                                   \
	"Sec-WebSocket-Version: 13\r\n\r\n"

static long parse(struct tu_guard *g, const char *s, size_t n, struct http_request *req)
{
	return http_request_parse(tu_guard_copy(g, s, n), n, 65536, req);
}

static void test_too_many_fields(void)
{
	char buf[4096];
	size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: h\r\n");
	struct tu_guard g = {0};
	struct http_request req;

	for (int i = 1; i < HTTP_HEADERS_MAX; i++)
		n += (size_t)sprintf(buf + n, "H%d: v\r\n", i);
	memcpy(buf + n, "\r\n", 3);
	CU_ASSERT_EQUAL(parse(&g, buf, n + 2, &req), (long)(n + 2));
	n += (size_t)sprintf(buf + n, "One: more\r\n\r\n");
	CU_ASSERT_EQUAL(parse(&g, buf, n, &req), -431);
	tu_guard_release(&g);
}

static void test_lists(void)
{
	struct http_slice v = {"keep-alive,  Upgrade ,,x", 24};

	CU_ASSERT(http_list_has(v, "upgrade"));
	CU_ASSERT(http_list_has(v, "KEEP-ALIVE"));
	CU_ASSERT(http_list_has(v, "x"));
	CU_ASSERT_FALSE(http_list_has(v, "upgrades"));
	CU_ASSERT_FALSE(http_list_has(v, "keep"));
	CU_ASSERT_FALSE(http_list_has((struct http_slice){"", 0}, "x"));
}

/* Parses s (a head) and runs the handshake check. */
static int check(const char *s, struct http_ws_upgrade *u)
{
	struct http_request req;
	long n = http_request_parse((const uint8_t *)s, strlen(s), 65536, &req);

	/* A head the parser refuses (HTTP/1.1 without Host) is refused with its status. */
	if (n < 0)
		return (int)n;
	CU_ASSERT_EQUAL_FATAL(n, (long)strlen(s));
	return http_ws_check(&req, protos, u);
}

static void test_rfc_example(void)
{
	struct http_ws_upgrade u;
	char out[512];
	size_t n;

	CU_ASSERT_EQUAL_FATAL(check(RFC_REQUEST, &u), 0);
	CU_ASSERT_STRING_EQUAL(u.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	CU_ASSERT_STRING_EQUAL(u.protocol, "mqtt");
	n = http_ws_accept_response(&u, out, sizeof(out));
	CU_ASSERT(n > 0 && n < sizeof(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "HTTP/1.1 101 Switching Protocols\r\n"));
	CU_ASSERT_PTR_NOT_NULL(
	        strstr(out, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Sec-WebSocket-Protocol: mqtt\r\n"));
	CU_ASSERT(strcmp(out + n - 4, "\r\n\r\n") == 0);
	CU_ASSERT_EQUAL(http_ws_accept_response(&u, out, 40), 0);
}

/* RFC_REQUEST with one line replaced (or removed, with an empty replacement). */
static int check_with(const char *line_start, const char *repl, struct http_ws_upgrade *u)
{
	char buf[1024];
	const char *at = strstr(RFC_REQUEST, line_start);
	const char *end = strstr(at, "\r\n") + 2;

	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - RFC_REQUEST), RFC_REQUEST, repl, end);
	return check(buf, u);
}

static void test_refusals(void)
{
	struct http_ws_upgrade u;

	CU_ASSERT_EQUAL(check_with("GET", "POST /chat HTTP/1.1\r\n", &u), -405);
	CU_ASSERT_EQUAL(check_with("GET", "GET /chat HTTP/1.0\r\n", &u), -400);
	CU_ASSERT_EQUAL(check_with("Upgrade:", "", &u), -426);
	CU_ASSERT_EQUAL(check_with("Upgrade:", "Upgrade: h2c\r\n", &u), -426);
	CU_ASSERT_EQUAL(check_with("Connection:", "Connection: keep-alive\r\n", &u), -426);
	CU_ASSERT_EQUAL(check_with("Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8\r\n", &u),
	                -426);
	CU_ASSERT_EQUAL(check_with("Sec-WebSocket-Version:", "", &u), -426);
	CU_ASSERT_EQUAL(check_with("Host:", "", &u), -400);
	CU_ASSERT_EQUAL(check_with("Sec-WebSocket-Key:", "", &u), -400);
	CU_ASSERT_EQUAL(check_with("Sec-WebSocket-Key:", "Sec-WebSocket-Key: c2hvcnQ=\r\n", &u),
	                -400);
	CU_ASSERT_EQUAL(check_with("Sec-WebSocket-Key:",
	                           "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\n", &u),
	                -400);
	CU_ASSERT_EQUAL(check_with("Sec-WebSocket-Protocol:", "", &u), -400);
	CU_ASSERT_EQUAL(check_with("Sec-WebSocket-Protocol:",
	                           "Sec-WebSocket-Protocol: chat, mqttx\r\n", &u),
	                -400);
	CU_ASSERT_PTR_NOT_NULL(u.why);
	CU_ASSERT_EQUAL(
	        check_with("Sec-WebSocket-Protocol:", "Sec-WebSocket-Protocol: mqttv3.1\r\n", &u),
	        0);
	CU_ASSERT_STRING_EQUAL(u.protocol, "mqttv3.1");
	/* The protocol may come in two fields. */
	CU_ASSERT_EQUAL(
	        check_with("Sec-WebSocket-Protocol:",
	                   "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: mqtt\r\n", &u),
	        0);
}

static void test_error_responses(void)
{
	char out[512];
	size_t n = http_error_response(426, "not an upgrade", out, sizeof(out));

	CU_ASSERT(n > 0);
	CU_ASSERT(strncmp(out, "HTTP/1.1 426 Upgrade Required\r\n", 31) == 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Sec-WebSocket-Version: 13\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Connection: close\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Content-Length: 15\r\n\r\nnot an upgrade\n"));
	n = http_error_response(405, "x", out, sizeof(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Allow: GET\r\n"));
	CU_ASSERT_EQUAL(http_error_response(400, "x", out, 20), 0);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"too many fields", test_too_many_fields},
	        {"token lists", test_lists},
	        {"RFC 6455's example handshake", test_rfc_example},
	        {"refused upgrades", test_refusals},
	        {"error responses", test_error_responses},
	        {NULL, NULL},
	};

	tu_add_suite("http upgrade", tests);
	return tu_run_registry();
}
