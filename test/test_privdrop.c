/*
 * Tests of giving up root (src/base/privdrop.c): whom privdrop_plan picks for each `user` and
 * start, the effective switch there and back (files made in between are the user's), and the
 * permanent drop with its checks. Each case that changes ids runs in a forked child, which
 * reports through its exit status, so this process stays root for the next one. Without root
 * there is nothing to drop: only the plan's "no effect" case runs and the binary says skipped.
 */
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "base/config.h"
#include "base/privdrop.h"
#include "starling/error.h"
#include "testutil.h"

static char err[512];

static struct privdrop plan_for(const char *user, int *rc)
{
	struct config cfg;
	struct privdrop p;

	config_defaults(&cfg);
	snprintf(cfg.user, sizeof(cfg.user), "%s", user);
	err[0] = '\0';
	*rc = privdrop_plan(&p, &cfg, err, sizeof(err));
	return p;
}

/* Runs fn in a child; its exit status is the number of failed checks (0: all held). */
static int in_child(int (*fn)(void))
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn());
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void test_plan(void)
{
	struct passwd *nobody = getpwnam("nobody");
	struct privdrop p;
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(nobody);
	p = plan_for("nobody", &rc);
	CU_ASSERT_EQUAL(rc, ST_OK);
	CU_ASSERT_TRUE(p.drop);
	CU_ASSERT_EQUAL(p.uid, nobody->pw_uid);
	CU_ASSERT_EQUAL(p.gid, nobody->pw_gid);
	CU_ASSERT_STRING_EQUAL(p.name, "nobody");
	p = plan_for("root", &rc);
	CU_ASSERT_EQUAL(rc, ST_OK);
	CU_ASSERT_FALSE(p.drop);
	CU_ASSERT_FALSE(p.root_default);
	/* The user was removed since the file was read. */
	p = plan_for("no-such-user-starling-test", &rc);
	CU_ASSERT_EQUAL(rc, ST_ERR_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot find user \"no-such-user-starling-test\""));
	/* No `user`: starling if it exists, else root with a warning. */
	p = plan_for("", &rc);
	CU_ASSERT_EQUAL(rc, ST_OK);
	if (getpwnam(PRIVDROP_DEFAULT_USER)) {
		CU_ASSERT_TRUE(p.drop);
		CU_ASSERT_STRING_EQUAL(p.name, PRIVDROP_DEFAULT_USER);
	} else {
		CU_ASSERT_FALSE(p.drop);
		CU_ASSERT_TRUE(p.root_default);
	}
}

/* Not root: nothing to drop, whatever `user` says, and apply does nothing. */
static int child_not_root(void)
{
	struct passwd *nobody = getpwnam("nobody");
	struct privdrop p;
	int rc, bad = 0;

	if (!nobody || setuid(nobody->pw_uid) != 0)
		return 100;
	p = plan_for("root", &rc);
	bad += rc != ST_OK || p.drop || p.root_default;
	p = plan_for("", &rc);
	bad += rc != ST_OK || p.drop || p.root_default;
	bad += privdrop_apply(&p, err, sizeof(err)) != ST_OK;
	return bad;
}

static void test_not_root_has_no_effect(void)
{
	CU_ASSERT_EQUAL(in_child(child_not_root), 0);
}

/* enter: the user's effective ids (a file made is its); leave: root again, groups restored. */
static int child_enter_leave(void)
{
	char path[64] = "/tmp/starling-privdrop-XXXXXX"; /* room for "/f" */
	gid_t before[PRIVDROP_GROUPS_MAX], after[PRIVDROP_GROUPS_MAX];
	int nbefore = getgroups(PRIVDROP_GROUPS_MAX, before), nafter, rc, bad = 0, fd;
	struct privdrop p = plan_for("nobody", &rc);
	struct stat st;

	if (rc != ST_OK || !mkdtemp(path) || chmod(path, 0777) != 0)
		return 100;
	bad += privdrop_enter(&p, err, sizeof(err)) != ST_OK;
	bad += geteuid() != p.uid || getegid() != p.gid || getuid() != 0;
	strcat(path, "/f");
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	bad += fd < 0 || fstat(fd, &st) != 0 || st.st_uid != p.uid || st.st_gid != p.gid;
	if (fd >= 0)
		close(fd);
	privdrop_leave(&p);
	bad += geteuid() != 0 || getegid() != 0;
	nafter = getgroups(PRIVDROP_GROUPS_MAX, after);
	bad += nafter != nbefore || memcmp(before, after, (size_t)nbefore * sizeof(gid_t)) != 0;
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
	/* A second leave, and an enter/leave without a drop, do nothing. */
	privdrop_leave(&p);
	p = plan_for("root", &rc);
	bad += privdrop_enter(&p, err, sizeof(err)) != ST_OK || geteuid() != 0;
	privdrop_leave(&p);
	return bad;
}

static void test_enter_and_leave(void)
{
	CU_ASSERT_EQUAL(in_child(child_enter_leave), 0);
}

/* apply, also from inside enter: every id is the user's, root's groups are gone, and root
 * cannot be had back. */
static int child_apply(void)
{
	uid_t r, e, s;
	gid_t rg, eg, sg, groups[PRIVDROP_GROUPS_MAX];
	int rc, bad = 0, n;
	struct privdrop p = plan_for("nobody", &rc);

	if (rc != ST_OK || privdrop_enter(&p, err, sizeof(err)) != ST_OK)
		return 100;
	bad += privdrop_apply(&p, err, sizeof(err)) != ST_OK;
	bad += getresuid(&r, &e, &s) != 0 || r != p.uid || e != p.uid || s != p.uid;
	bad += getresgid(&rg, &eg, &sg) != 0 || rg != p.gid || eg != p.gid || sg != p.gid;
	n = getgroups(PRIVDROP_GROUPS_MAX, groups);
	for (int i = 0; i < n; i++)
		bad += groups[i] == 0;
	bad += setuid(0) == 0 || seteuid(0) == 0;
	return bad;
}

static void test_apply(void)
{
	CU_ASSERT_EQUAL(in_child(child_apply), 0);
}

int main(void)
{
	static const struct tu_test tests[] = {
	        {"whom the plan picks", test_plan},
	        {"not root: no effect", test_not_root_has_no_effect},
	        {"enter and leave", test_enter_and_leave},
	        {"apply", test_apply},
	        {NULL, NULL},
	};

	if (geteuid() != 0) {
		printf("test_privdrop: not root, nothing to drop: skipped\n");
		return 77;
	}
	tu_add_suite("privdrop", tests);
	return tu_run_registry();
}
