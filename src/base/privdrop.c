/*
 * Giving up root (privdrop.h). The order of a permanent drop matters: supplementary groups and
 * the group go first, while the process may still change them, the uid last; afterwards every
 * id is read back and setuid(0) must fail, so a drop that only half happened stops the start
 * instead of leaving a broker that believes it is unprivileged.
 */
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "starling/error.h"

/* The user's uid, gid and name; 0 when found, -1 when not (errno 0) or on error (errno). */
static int privdrop_lookup(const char *name, struct privdrop *p)
{
	char buf[16384];
	struct passwd pw, *res = NULL;
	int rc = getpwnam_r(name, &pw, buf, sizeof(buf), &res);

	if (!res) {
		/* getpwnam_r(3): 0, ENOENT, ESRCH, EBADF or EPERM all mean "no such user". */
		errno = rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM ? 0 : rc;
		return -1;
	}
	p->uid = pw.pw_uid;
	p->gid = pw.pw_gid;
	snprintf(p->name, sizeof(p->name), "%s", pw.pw_name);
	return 0;
}

int privdrop_plan(struct privdrop *p, const struct config *cfg, char *err, size_t errlen)
{
	const char *name = cfg->user[0] ? cfg->user : PRIVDROP_DEFAULT_USER;

	memset(p, 0, sizeof(*p));
	if (geteuid() != 0)
		return ST_OK;
	if (privdrop_lookup(name, p) != 0) {
		if (!cfg->user[0] && errno == 0) {
			p->root_default = true;
			return ST_OK;
		}
		snprintf(err, errlen, "user: cannot find user \"%s\"%s%s", name, errno ? ": " : "",
		         errno ? strerror(errno) : "");
		return ST_ERR_CONFIG;
	}
	p->drop = p->uid != 0;
	return ST_OK;
}

int privdrop_enter(struct privdrop *p, char *err, size_t errlen)
{
	if (!p->drop || p->entered)
		return ST_OK;
	p->root_ngroups = getgroups(PRIVDROP_GROUPS_MAX, p->root_groups);
	if (p->root_ngroups < 0) {
		snprintf(err, errlen, "getgroups: %s", strerror(errno));
		return ST_ERR_SYS;
	}
	if (initgroups(p->name, p->gid) != 0 || setegid(p->gid) != 0 || seteuid(p->uid) != 0) {
		int e = errno;

		snprintf(err, errlen, "cannot act as user %s: %s", p->name, strerror(e));
		p->entered = true;
		privdrop_leave(p);
		return ST_ERR_SYS;
	}
	p->entered = true;
	return ST_OK;
}

void privdrop_leave(struct privdrop *p)
{
	if (!p->entered)
		return;
	p->entered = false;
	if (seteuid(0) != 0 || setegid(0) != 0 ||
	    setgroups((size_t)p->root_ngroups, p->root_groups) != 0) {
		fprintf(stderr, "starlingd: cannot become root again: %s\n", strerror(errno));
		abort();
	}
}

int privdrop_apply(struct privdrop *p, char *err, size_t errlen)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (!p->drop)
		return ST_OK;
	privdrop_leave(p);
	if (initgroups(p->name, p->gid) != 0) {
		snprintf(err, errlen, "initgroups(%s): %s", p->name, strerror(errno));
		return ST_ERR_SYS;
	}
	if (setgid(p->gid) != 0) {
		snprintf(err, errlen, "setgid(%u): %s", (unsigned)p->gid, strerror(errno));
		return ST_ERR_SYS;
	}
	if (setuid(p->uid) != 0) {
		snprintf(err, errlen, "setuid(%u): %s", (unsigned)p->uid, strerror(errno));
		return ST_ERR_SYS;
	}
	if (getresuid(&r, &e, &s) != 0 || getresgid(&rg, &eg, &sg) != 0 || r != p->uid ||
	    e != p->uid || s != p->uid || rg != p->gid || eg != p->gid || sg != p->gid) {
		snprintf(err, errlen, "the ids after the drop to %s are not all its own", p->name);
		return ST_ERR_SYS;
	}
	if (setuid(0) == 0) {
		snprintf(err, errlen, "root could be regained after the drop to %s", p->name);
		return ST_ERR_SYS;
	}
	return ST_OK;
}
