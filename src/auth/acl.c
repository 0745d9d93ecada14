/*
 * acl_file parsing, per-client resolution, checks and subscription classification (acl.h
 * states the rules). Parsing mirrors Mosquitto 2.0.11's: words split at blanks, an optional
 * access word, the filter is the rest of the line; `topic read` alone is a rule for the topic
 * "read", as there. Unlike Mosquitto, a bad line stops the load with its file and line.
 */
#include "acl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "starling/error.h"
#include "starling/topic.h"

static bool acl_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int acl_list_add(struct acl_list *l, const uint8_t *f, size_t len, uint8_t access)
{
	struct acl_rule r = {.len = (uint16_t)len, .access = access};

	if (l->n == l->cap) {
		uint32_t cap = l->cap ? l->cap * 2 : 8;
		struct acl_rule *nr = realloc(l->rules, cap * sizeof(*nr));

		if (!nr)
			return ST_ERR_NOMEM;
		l->rules = nr;
		l->cap = cap;
	}
	r.filter = malloc(len ? len : 1);
	if (!r.filter)
		return ST_ERR_NOMEM;
	memcpy(r.filter, f, len);
	for (size_t i = 0; i + 1 < len; i++) {
		r.uses_id |= f[i] == '%' && f[i + 1] == 'c';
		r.uses_user |= f[i] == '%' && f[i + 1] == 'u';
	}
	/* Denies first: any matching deny wins, so their place among themselves is free. */
	if (access == ACL_DENY) {
		memmove(l->rules + 1, l->rules, l->n * sizeof(*l->rules));
		l->rules[0] = r;
	} else {
		l->rules[l->n] = r;
	}
	l->n++;
	return ST_OK;
}

static void acl_list_free(struct acl_list *l)
{
	for (uint32_t i = 0; i < l->n; i++)
		free(l->rules[i].filter);
	free(l->rules);
	memset(l, 0, sizeof(*l));
}

/* The next blank-separated word of [*p, end). */
static bool acl_word(const char **p, const char *end, const char **w, size_t *n)
{
	while (*p < end && acl_blank(**p))
		(*p)++;
	*w = *p;
	while (*p < end && !acl_blank(**p))
		(*p)++;
	*n = (size_t)(*p - *w);
	return *n > 0;
}

static void acl_trim(const char **s, size_t *n)
{
	while (*n && acl_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && acl_blank((*s)[*n - 1]))
		(*n)--;
}

static bool acl_word_is(const char *w, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(w, s, n) == 0;
}

struct acl_parser {
	struct acl *acl;      /* being built */
	struct acl_list *cur; /* where `topic` lines go */
	char why[128];        /* reason of the last error */
};

/* A new block for user `name`; blocks of one name are merged after the parse (acl_merge). */
static struct acl_list *acl_user_list(struct acl *acl, const char *name, size_t len)
{
	struct acl_user *u;

	if (acl->nusers && acl->users[acl->nusers - 1].len == len &&
	    !memcmp(acl->users[acl->nusers - 1].name, name, len))
		return &acl->users[acl->nusers - 1].list;
	u = realloc(acl->users, (acl->nusers + 1) * sizeof(*u));
	if (!u)
		return NULL;
	acl->users = u;
	u = &acl->users[acl->nusers];
	memset(u, 0, sizeof(*u));
	u->name = strndup(name, len);
	if (!u->name)
		return NULL;
	u->len = len;
	acl->nusers++;
	return &u->list;
}

/* `topic|pattern [access] FILTER`: p is after the first word. */
static int acl_rule_line(struct acl_parser *ps, bool pattern, const char *p, const char *end)
{
	const char *w, *f;
	size_t n, flen;
	uint8_t access = ACL_READ | ACL_WRITE;

	if (!acl_word(&p, end, &w, &n))
		return snprintf(ps->why, sizeof(ps->why), "missing topic"), ST_ERR_CONFIG;
	f = p;
	flen = (size_t)(end - p);
	acl_trim(&f, &flen);
	if (flen == 0) {
		f = w; /* one word: the topic, readwrite (Mosquitto) */
		flen = n;
	} else if (acl_word_is(w, n, "read")) {
		access = ACL_READ;
	} else if (acl_word_is(w, n, "write")) {
		access = ACL_WRITE;
	} else if (acl_word_is(w, n, "readwrite")) {
		access = ACL_READ | ACL_WRITE;
	} else if (acl_word_is(w, n, "deny")) {
		access = ACL_DENY;
	} else {
		snprintf(ps->why, sizeof(ps->why), "invalid access type \"%.*s\"", (int)n, w);
		return ST_ERR_CONFIG;
	}
	if (flen > UINT16_MAX || !st_topic_filter_is_valid((const uint8_t *)f, flen)) {
		snprintf(ps->why, sizeof(ps->why), "invalid topic filter \"%.*s\"",
		         (int)(flen > 64 ? 64 : flen), f);
		return ST_ERR_CONFIG;
	}
	return acl_list_add(pattern ? &ps->acl->pattern : ps->cur, (const uint8_t *)f, flen,
	                    access);
}

static int acl_line(struct acl_parser *ps, const char *s, size_t n)
{
	const char *p = s, *end = s + n, *w;
	size_t wn;

	if (!acl_word(&p, end, &w, &wn) || w[0] == '#')
		return ST_OK;
	if (memchr(s, '\0', n))
		return snprintf(ps->why, sizeof(ps->why), "NUL byte in line"), ST_ERR_CONFIG;
	if (acl_word_is(w, wn, "topic") || acl_word_is(w, wn, "pattern"))
		return acl_rule_line(ps, w[0] == 'p', p, end);
	if (acl_word_is(w, wn, "user")) {
		const char *name = p;
		size_t len = (size_t)(end - p);

		acl_trim(&name, &len);
		if (len == 0)
			return snprintf(ps->why, sizeof(ps->why), "missing user name"),
			       ST_ERR_CONFIG;
		ps->cur = acl_user_list(ps->acl, name, len);
		return ps->cur ? ST_OK : ST_ERR_NOMEM;
	}
	snprintf(ps->why, sizeof(ps->why), "expected topic, user or pattern, not \"%.*s\"",
	         (int)(wn > 32 ? 32 : wn), w);
	return ST_ERR_CONFIG;
}

static int acl_user_cmp(const void *a, const void *b)
{
	const struct acl_user *x = a, *y = b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->name, y->name, x->len);
}

/*
 * Blocks of one user (sorted next to each other) become one, as Mosquitto merges them: the
 * order of rules within a list does not change an answer (acl.h), so they are appended.
 */
static int acl_merge(struct acl *acl)
{
	size_t o = 0;

	for (size_t i = 0; i < acl->nusers; i++) {
		struct acl_user *u = &acl->users[i];

		if (o > 0 && acl_user_cmp(&acl->users[o - 1], u) == 0) {
			struct acl_list *dst = &acl->users[o - 1].list;

			for (uint32_t k = 0; k < u->list.n; k++)
				if (acl_list_add(dst, u->list.rules[k].filter, u->list.rules[k].len,
				                 u->list.rules[k].access) != ST_OK) {
					/* Every block still held stays listed once, for acl_free.
					 */
					memmove(&acl->users[o], u, (acl->nusers - i) * sizeof(*u));
					acl->nusers = o + (acl->nusers - i);
					return ST_ERR_NOMEM;
				}
			acl_list_free(&u->list);
			free(u->name);
			continue;
		}
		acl->users[o++] = *u;
	}
	acl->nusers = o;
	return ST_OK;
}

int acl_parse(const char *path, const char *text, size_t len, struct acl **out, char *err,
              size_t errlen)
{
	struct acl_parser ps = {.acl = calloc(1, sizeof(struct acl))};
	const char *p = text, *end = text + len, *s;
	unsigned line = 0;
	size_t n;
	int rc = ST_OK;

	if (!ps.acl)
		return snprintf(err, errlen, "%s: out of memory", path), ST_ERR_NOMEM;
	ps.cur = &ps.acl->anon;
	while (rc == ST_OK && (s = auth_next_line(&p, end, &n)) != NULL) {
		line++;
		ps.why[0] = '\0';
		rc = acl_line(&ps, s, n);
	}
	if (rc != ST_OK) {
		if (rc == ST_ERR_NOMEM)
			snprintf(err, errlen, "%s: out of memory", path);
		else
			snprintf(err, errlen, "%s:%u: %s", path, line, ps.why);
		acl_free(ps.acl);
		return rc;
	}
	if (ps.acl->nusers)
		qsort(ps.acl->users, ps.acl->nusers, sizeof(*ps.acl->users), acl_user_cmp);
	if (acl_merge(ps.acl) != ST_OK) {
		snprintf(err, errlen, "%s: out of memory", path);
		acl_free(ps.acl);
		return ST_ERR_NOMEM;
	}
	*out = ps.acl;
	return ST_OK;
}

int acl_load(const char *path, struct acl **out, char *err, size_t errlen)
{
	char *text;
	size_t len;
	int rc = auth_read_file(path, &text, &len, err, errlen);

	if (rc != ST_OK)
		return rc;
	rc = acl_parse(path, text, len, out, err, errlen);
	free(text);
	return rc;
}

void acl_free(struct acl *acl)
{
	if (!acl)
		return;
	acl_list_free(&acl->anon);
	acl_list_free(&acl->pattern);
	for (size_t i = 0; i < acl->nusers; i++) {
		free(acl->users[i].name);
		acl_list_free(&acl->users[i].list);
	}
	free(acl->users);
	free(acl);
}

const struct acl_list *acl_user_rules(const struct acl *acl, const uint8_t *user, size_t len)
{
	size_t lo = 0, hi = acl->nusers;

	if (!user)
		return &acl->anon;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct acl_user *u = &acl->users[mid];
		int c = u->len != len ? (u->len < len ? -1 : 1) : memcmp(u->name, user, len);

		if (c == 0)
			return &u->list;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* r's filter with %c and %u replaced (Mosquitto replaces them wherever they stand). */
static int acl_substitute(struct acl_list *l, const struct acl_rule *r, const uint8_t *user,
                          size_t ulen, const uint8_t *id, size_t idlen)
{
	size_t cap = r->len + (r->uses_id ? idlen * r->len / 2 : 0) +
	             (r->uses_user ? ulen * r->len / 2 : 0) + 1;
	uint8_t *buf = malloc(cap), *o = buf;
	int rc;

	if (!buf)
		return ST_ERR_NOMEM;
	for (size_t i = 0; i < r->len; i++) {
		if (r->filter[i] == '%' && i + 1 < r->len &&
		    (r->filter[i + 1] == 'c' || (r->filter[i + 1] == 'u' && user))) {
			bool c = r->filter[++i] == 'c';

			memcpy(o, c ? id : user, c ? idlen : ulen);
			o += c ? idlen : ulen;
			continue;
		}
		*o++ = r->filter[i];
	}
	rc = (size_t)(o - buf) <= UINT16_MAX && st_topic_filter_is_valid(buf, (size_t)(o - buf))
	             ? acl_list_add(l, buf, (size_t)(o - buf), r->access)
	             : ST_OK; /* a filter no topic can match is no rule at all */
	free(buf);
	return rc;
}

static bool acl_dangerous(const uint8_t *s, size_t n)
{
	return s && (memchr(s, '+', n) || memchr(s, '#', n));
}

struct acl_client *acl_client_new(const struct acl *acl, const uint8_t *user, size_t ulen,
                                  const uint8_t *id, size_t idlen)
{
	struct acl_client *c = calloc(1, sizeof(*c));
	const struct acl_list *mine = acl_user_rules(acl, user, ulen);
	int rc = ST_OK;

	if (!c)
		return NULL;
	for (uint32_t i = 0; mine && i < mine->n && rc == ST_OK; i++)
		rc = acl_list_add(&c->tier[0], mine->rules[i].filter, mine->rules[i].len,
		                  mine->rules[i].access);
	/* A client that could widen its own patterns gets none of them (Mosquitto). */
	if (acl_dangerous(user, ulen) || acl_dangerous(id, idlen))
		goto out;
	for (uint32_t i = 0; i < acl->pattern.n && rc == ST_OK; i++) {
		const struct acl_rule *r = &acl->pattern.rules[i];

		if (r->uses_user && !user)
			continue;
		rc = acl_substitute(&c->tier[1], r, user, ulen, id, idlen);
	}
out:
	if (rc != ST_OK) {
		acl_client_free(c);
		return NULL;
	}
	return c;
}

void acl_client_free(struct acl_client *c)
{
	if (!c)
		return;
	acl_list_free(&c->tier[0]);
	acl_list_free(&c->tier[1]);
	free(c);
}

bool acl_check(const struct acl_client *c, const uint8_t *t, size_t len, unsigned access)
{
	for (int k = 0; k < 2; k++) {
		const struct acl_list *l = &c->tier[k];

		for (uint32_t i = 0; i < l->n; i++) {
			const struct acl_rule *r = &l->rules[i];

			if (!st_topic_matches(r->filter, r->len, t, len))
				continue;
			if (r->access == ACL_DENY)
				return false;
			if (r->access & access)
				return true;
		}
	}
	return false;
}

/* Levels of a filter, one at a time. */
struct acl_levels {
	const uint8_t *p; /* next level */
	size_t left;      /* bytes from p; SIZE_MAX once past the last level */
};

static bool acl_next_level(struct acl_levels *it, const uint8_t **l, size_t *n)
{
	if (it->left == SIZE_MAX)
		return false;
	*l = it->p;
	*n = st_topic_level_len(it->p, it->left);
	if (*n == it->left) {
		it->left = SIZE_MAX;
	} else {
		it->p += *n + 1;
		it->left -= *n + 1;
	}
	return true;
}

static bool acl_is(const uint8_t *l, size_t n, char c)
{
	return n == 1 && l[0] == c;
}

/* Whether a filter matches only '$' topics (its first level is a literal starting with '$');
 * otherwise it matches none [MQTT-4.7.2-1]. */
static bool acl_dollar(const uint8_t *f, size_t len)
{
	return len > 0 && f[0] == '$';
}

bool acl_filter_covers(const uint8_t *a, size_t alen, const uint8_t *f, size_t flen)
{
	struct acl_levels ia = {a, alen}, i_f = {f, flen};
	const uint8_t *la, *lf;
	size_t na, nf;

	/* A wildcard first level never matches '$' topics; a '$' literal matches only them. */
	if (acl_dollar(f, flen) != acl_dollar(a, alen))
		return false;
	for (;;) {
		bool more_a = acl_next_level(&ia, &la, &na);
		bool more_f = acl_next_level(&i_f, &lf, &nf);

		if (!more_a)
			return !more_f;
		if (acl_is(la, na, '#'))
			return true;
		if (!more_f) /* f ends: a must end with "/#" here (a/# matches a) */
			return acl_is(la, na, '#');
		if (acl_is(lf, nf, '#'))
			return false;
		if (acl_is(la, na, '+'))
			continue;
		if (acl_is(lf, nf, '+') || na != nf || memcmp(la, lf, na) != 0)
			return false;
	}
}

bool acl_filter_intersects(const uint8_t *a, size_t alen, const uint8_t *f, size_t flen)
{
	struct acl_levels ia = {a, alen}, i_f = {f, flen};
	const uint8_t *la, *lf;
	size_t na, nf;

	if (acl_dollar(a, alen) != acl_dollar(f, flen))
		return false;
	for (;;) {
		bool more_a = acl_next_level(&ia, &la, &na);
		bool more_f = acl_next_level(&i_f, &lf, &nf);

		if (!more_a && !more_f)
			return true;
		if (!more_a)
			return acl_is(lf, nf, '#');
		if (!more_f)
			return acl_is(la, na, '#');
		if (acl_is(la, na, '#') || acl_is(lf, nf, '#'))
			return true;
		if (acl_is(la, na, '+') || acl_is(lf, nf, '+'))
			continue;
		if (na != nf || memcmp(la, lf, na) != 0)
			return false;
	}
}

/* What a tier says about the topics of f: any deny or read rule touching it, covering it. */
struct acl_tier_view {
	bool deny_touches, deny_covers, read_touches, read_covers;
};

static struct acl_tier_view acl_view(const struct acl_list *l, const uint8_t *f, size_t len)
{
	struct acl_tier_view v = {0};

	for (uint32_t i = 0; i < l->n; i++) {
		const struct acl_rule *r = &l->rules[i];
		bool deny = r->access == ACL_DENY;

		if (!deny && !(r->access & ACL_READ))
			continue;
		if (!acl_filter_intersects(r->filter, r->len, f, len))
			continue;
		if (deny)
			v.deny_touches = true;
		else
			v.read_touches = true;
		if (acl_filter_covers(r->filter, r->len, f, len)) {
			if (deny)
				v.deny_covers = true;
			else
				v.read_covers = true;
		}
	}
	return v;
}

enum acl_class acl_classify(const struct acl_client *c, const uint8_t *f, size_t len)
{
	struct acl_tier_view t0 = acl_view(&c->tier[0], f, len);
	struct acl_tier_view t1;

	if (t0.deny_covers)
		return ACL_NONE;
	if (!t0.deny_touches && t0.read_covers)
		return ACL_ALL;
	if (t0.read_touches)
		return ACL_SOME;
	/* Every topic of f that the first tier does not deny falls to the patterns. */
	t1 = acl_view(&c->tier[1], f, len);
	if (t1.deny_covers || !t1.read_touches)
		return ACL_NONE;
	if (!t0.deny_touches && !t1.deny_touches && t1.read_covers)
		return ACL_ALL;
	return ACL_SOME;
}
