/*
 * UTF-8 validation as MQTT requires it (MQTT 3.1.1 section 1.5.3, MQTT 5 section 1.5.4): the
 * bytes must be well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates U+D800..U+DFFF,
 * nothing above U+10FFFF) and must not contain U+0000.
 */
#ifndef STARLING_UTF8_H
#define STARLING_UTF8_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ST_OK, ST_ERR_UTF8 (ill-formed) or ST_ERR_UTF8_NUL (U+0000). Reads exactly len bytes. */
int st_utf8_check(const uint8_t *s, size_t len);

#ifdef __cplusplus
}
#endif
#endif
