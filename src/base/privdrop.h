/*
 * The `user` option: a broker started as root gives up root once its listening sockets are
 * bound, as Mosquitto's `user mosquitto` does. Nothing else of the start needs root, so
 * everything the broker reads or creates (the log file, password and ACL files, certificates,
 * the persistence directory, the pid file) is opened under the user's identity: before the
 * sockets are bound by switching only the effective ids there and back (privdrop_enter and
 * privdrop_leave), afterwards for good (privdrop_apply). Files are then owned by, and usable
 * after a SIGHUP reload by, the user the broker runs as.
 *
 * Which user (privdrop_plan): `user NAME` names it (`user root` keeps root); without it, a broker
 * started as root becomes `starling` when that user exists (the Debian package creates it) and
 * otherwise stays root with a warning. Not started as root: `user` has no effect (Mosquitto's
 * rule), there is nothing to drop. Process-wide state: call from the main thread before any
 * other thread exists.
 */
#ifndef STARLING_PRIVDROP_H
#define STARLING_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

#define PRIVDROP_DEFAULT_USER "starling" /* taken by a root start without `user` if it exists */
#define PRIVDROP_GROUPS_MAX   64         /* supplementary groups of root kept across enter/leave */

struct privdrop {
	bool drop;                  /* a root start that becomes `name` */
	bool entered;               /* the effective ids are the user's (privdrop_enter) */
	bool root_default;          /* root, no `user`, no `starling` user: stays root */
	uid_t uid;                  /* the user's uid */
	gid_t gid;                  /* its primary group */
	char name[CONFIG_USER_MAX]; /* its name (initgroups) */
	gid_t root_groups[PRIVDROP_GROUPS_MAX]; /* root's supplementary groups, restored on leave */
	int root_ngroups;                       /* entries in root_groups */
};

/*
 * Decides whom the process runs as (above) from cfg (borrowed). Returns ST_OK, or
 * ST_ERR_CONFIG with err filled when the named user does not exist (config_load_file checks it
 * too, naming the line; this catches a user removed since).
 */
int privdrop_plan(struct privdrop *p, const struct config *cfg, char *err, size_t errlen);

/*
 * Takes the user's identity for file access only (supplementary groups, then effective gid and
 * uid), keeping root as real and saved ids so that privdrop_leave can return. Does nothing
 * without a drop planned. ST_OK, or ST_ERR_SYS with err filled (nothing changed).
 */
int privdrop_enter(struct privdrop *p, char *err, size_t errlen);

/* Back to root after privdrop_enter (nothing to do otherwise). Aborts if root cannot be had
 * back: the process would be in a state nobody planned. */
void privdrop_leave(struct privdrop *p);

/*
 * Becomes the user for good: initgroups, setgid, setuid, in that order, then checks that every
 * id is the user's and that root cannot be regained. ST_OK (also with nothing to drop), or
 * ST_ERR_SYS with err filled; the caller must then exit.
 */
int privdrop_apply(struct privdrop *p, char *err, size_t errlen);

#endif
