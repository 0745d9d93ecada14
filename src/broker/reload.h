/*
 * SIGHUP: the files the configuration names are read again, without dropping a connection.
 * Worker 0 reads the signal (its signalfd) and runs the reload steps in order, each of which
 * either puts its new state in force or logs why it keeps the old one:
 *   1. the log file (`log_dest file`) is reopened, for log rotation;
 *   2. password_file and acl_file are loaded into a new struct auth_set, published to every
 *      worker (below); a file that is missing or bad keeps the old set in force, whole;
 *   3. each TLS listener's certfile, keyfile, cafile, capath and crlfile are read into a new
 *      SSL_CTX that connections accepted from then on use (tls_server_reload; connections
 *      keep the context their handshake used); a file that cannot be used keeps the old one.
 * The configuration file itself is not re-read: the options it holds stay as at start-up.
 *
 * Publishing a new auth set to several workers: the set is immutable once loaded; worker 0
 * stores the pointer (release) and sets auth_pending to the worker count, then rings every
 * doorbell. Each worker notices the new pointer at the top of its next loop iteration
 * (a relaxed load per iteration, then an acquire load), adopts it, rebuilds the ACL rules of
 * every session it holds and re-classifies their subscriptions (access.h) so that no decision
 * taken under the old rules survives, then decrements auth_pending (release). Only when it
 * reaches 0 (acquire) does worker 0 free the old set; a further SIGHUP meanwhile waits for
 * that. Each worker thus reads exactly one set at a time, and no set is freed while read.
 * Connected clients stay connected (Mosquitto 2.0 disconnects those whose password no longer
 * matches; the issue asks for no dropped connection): the new rules judge them from then on.
 */
#ifndef STARLING_RELOAD_H
#define STARLING_RELOAD_H

#include <stdbool.h>

struct worker;

/* Worker 0, on SIGHUP: runs every reload step. */
void reload_run(struct worker *w);

/* Every worker, each loop iteration: adopts a newly published auth set. Cheap when none. */
void reload_adopt(struct worker *w);

/* Worker 0, from housekeeping: frees the retired set once every worker has left it, and runs
 * a reload that had to wait for that. */
void reload_housekeeping(struct worker *w);

#endif
