/*
 * What the service manager is told (systemd's Type=notify, through libsystemd's sd_notify):
 * READY=1 once every listener is bound and the workers run, RELOADING=1 (with MONOTONIC_USEC)
 * and READY=1 around a SIGHUP reload, STOPPING=1 when shutdown starts, and a STATUS= line
 * (ports, workers, clients connected) that `systemctl status` shows. Without NOTIFY_SOCKET in
 * the environment every call returns at once and sends nothing.
 *
 * Only worker 0, which is the main thread, calls these: sd_notify reads the environment and
 * is not meant to run on several threads at once. The periodic status is one datagram at most
 * every SERVICE_STATUS_MS, and only when what it says has changed.
 */
#ifndef STARLING_SERVICE_H
#define STARLING_SERVICE_H

struct worker;

#define SERVICE_STATUS_MS 5000 /* how often the STATUS= line may be refreshed */

/* The broker serves: READY=1 and the first STATUS=. */
void service_ready(struct worker *w);

/* A SIGHUP reload starts (RELOADING=1, MONOTONIC_USEC=now) / has finished (READY=1). */
void service_reloading(struct worker *w);
void service_reloaded(struct worker *w);

/* Shutdown has started (STOPPING=1). */
void service_stopping(struct worker *w);

/* From worker 0's housekeeping: refreshes STATUS= when the client count has changed. */
void service_tick(struct worker *w);

#endif
