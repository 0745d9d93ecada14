/*
 * psk_file: parsing, Mosquitto's key decoding, lookup (psk.h).
 */
#include "psk.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "starling/error.h"

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int auth_psk_hex(const char *hex, size_t len, uint8_t *out, size_t cap)
{
	size_t zeros = 0, i = 0, n = 0, digits;

	for (size_t k = 0; k < len; k++)
		if (hex_digit(hex[k]) < 0)
			return -1;
	/* Leading "00" pairs are zero bytes of their own (mosquitto__hex2bin). */
	while (i + 2 <= len && hex[i] == '0' && hex[i + 1] == '0') {
		zeros++;
		i += 2;
	}
	/* The rest, as a number: its leading zero digits go, an odd count gets a zero nibble. */
	while (i < len && hex[i] == '0')
		i++;
	digits = len - i;
	if (zeros + (digits + 1) / 2 > cap || zeros + digits == 0)
		return -1;
	memset(out, 0, zeros);
	n = zeros;
	if (digits % 2) {
		out[n++] = (uint8_t)hex_digit(hex[i]);
		i++;
	}
	for (; i < len; i += 2)
		out[n++] = (uint8_t)(hex_digit(hex[i]) << 4 | hex_digit(hex[i + 1]));
	return (int)n;
}

static bool psk_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void psk_trim(const char **s, size_t *n)
{
	while (*n > 0 && psk_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && psk_blank((*s)[*n - 1]))
		(*n)--;
}

static int psk_cmp(const void *a, const void *b)
{
	return strcmp(((const struct auth_psk_entry *)a)->identity,
	              ((const struct auth_psk_entry *)b)->identity);
}

/* One line into e; returns NULL, or why it is not a line of a psk_file. */
static const char *psk_line(const char *line, size_t n, struct auth_psk_entry *e)
{
	const char *end = line + n, *colon = memchr(line, ':', n), *id = line, *key, *key_end;
	size_t id_len, key_len;
	int len;

	if (!colon)
		return "expected identity:key";
	id_len = (size_t)(colon - line);
	psk_trim(&id, &id_len);
	key = colon + 1;
	/* Mosquitto takes the key up to a second ':', if any. */
	key_end = memchr(key, ':', (size_t)(end - key));
	key_len = (size_t)((key_end ? key_end : end) - key);
	psk_trim(&key, &key_len);
	if (id_len == 0)
		return "empty identity";
	if (id_len > AUTH_PSK_IDENTITY_MAX)
		return "identity longer than 128 bytes";
	if (memchr(id, '\0', id_len))
		return "NUL byte in the identity";
	if (key_len == 0)
		return "empty key";
	len = auth_psk_hex(key, key_len, e->key, sizeof(e->key));
	if (len < 0)
		return key_len > 2 * AUTH_PSK_KEY_MAX ? "key longer than 512 bytes"
		                                      : "key is not hexadecimal (or is zero)";
	memcpy(e->identity, id, id_len);
	e->identity[id_len] = '\0';
	e->key_len = (uint32_t)len;
	return NULL;
}

int auth_psk_load(const char *path, struct auth_psk **out, char *err, size_t errlen)
{
	struct auth_psk *p = calloc(1, sizeof(*p));
	const char *cur, *end, *line;
	char *text = NULL;
	size_t len, n, cap = 0;
	unsigned lineno = 0;
	int rc;

	if (!p)
		return ST_ERR_NOMEM;
	rc = auth_read_file(path, &text, &len, err, errlen);
	if (rc != ST_OK)
		goto fail;
	cur = text;
	end = text + len;
	while ((line = auth_next_line(&cur, end, &n)) != NULL) {
		const char *why;
		size_t t = n;
		const char *s = line;

		lineno++;
		psk_trim(&s, &t);
		if (t == 0 || s[0] == '#')
			continue;
		if (p->count == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct auth_psk_entry *ne = realloc(p->entries, nc * sizeof(*ne));

			if (!ne) {
				rc = ST_ERR_NOMEM;
				goto fail;
			}
			p->entries = ne;
			cap = nc;
		}
		why = psk_line(line, n, &p->entries[p->count]);
		if (why) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
			rc = ST_ERR_CONFIG;
			goto fail;
		}
		p->count++;
	}
	if (p->count)
		qsort(p->entries, p->count, sizeof(*p->entries), psk_cmp);
	for (size_t i = 1; i < p->count; i++)
		if (strcmp(p->entries[i - 1].identity, p->entries[i].identity) == 0) {
			snprintf(err, errlen, "%s: identity \"%s\" given twice", path,
			         p->entries[i].identity);
			rc = ST_ERR_CONFIG;
			goto fail;
		}
	free(text);
	*out = p;
	return ST_OK;
fail:
	free(text);
	auth_psk_free(p);
	return rc;
}

void auth_psk_free(struct auth_psk *p)
{
	if (!p)
		return;
	/* The keys are secrets: wiped before the memory goes back. */
	if (p->entries)
		OPENSSL_cleanse(p->entries, p->count * sizeof(*p->entries));
	free(p->entries);
	free(p);
}

const struct auth_psk_entry *auth_psk_find(const struct auth_psk *p, const char *identity)
{
	struct auth_psk_entry key;

	if (!p || !p->count || strlen(identity) > AUTH_PSK_IDENTITY_MAX)
		return NULL;
	strcpy(key.identity, identity);
	return bsearch(&key, p->entries, p->count, sizeof(key), psk_cmp);
}
