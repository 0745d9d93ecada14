/*
 * HTTP/1.1 response heads (response.h).
 */
#include "response.h"

#include <stdio.h>

const char *http_reason(unsigned status)
{
	switch (status) {
	case 200:
		return "OK";
	case 302:
		return "Found";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

size_t http_response_head(char *buf, size_t cap, unsigned status, const char *content_type,
                          size_t content_length, bool keep_alive, const char *extra)
{
	int n = snprintf(buf, cap, "HTTP/1.1 %u %s\r\n%s%s%sContent-Length: %zu\r\n%s%s\r\n",
	                 status, http_reason(status), content_type ? "Content-Type: " : "",
	                 content_type ? content_type : "", content_type ? "\r\n" : "",
	                 content_length, keep_alive ? "" : "Connection: close\r\n",
	                 extra ? extra : "");

	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}
