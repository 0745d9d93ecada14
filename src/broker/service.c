/*
 * The service manager's view of the broker (service.h), through sd_notify(3).
 */
#include "service.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "broker.h"
#include "worker.h"

/* "ports 1883, 8883; 4 workers; 12 clients connected": each port once (IPv4 and IPv6 share). */
static void service_status_line(const struct worker *w, uint32_t clients, char *buf, size_t cap)
{
	const struct broker *b = w->b;
	size_t n = (size_t)snprintf(buf, cap, "STATUS=Listening on port%s ",
	                            b->nlisten > 1 ? "s" : "");

	for (unsigned i = 0; i < b->nlisten && n < cap; i++) {
		bool seen = false;

		for (unsigned k = 0; k < i; k++)
			seen |= b->listen_ports[k] == b->listen_ports[i];
		if (!seen)
			n += (size_t)snprintf(buf + n, cap - n, "%s%u", i ? ", " : "",
			                      b->listen_ports[i]);
	}
	if (n < cap)
		snprintf(buf + n, cap - n, "; %u worker%s; %" PRIu32 " client%s connected",
		         b->nworkers, b->nworkers > 1 ? "s" : "", clients, clients == 1 ? "" : "s");
}

/* Sends state (with a fresh STATUS= line when status is true); a failure is logged once. */
static void service_send(struct worker *w, const char *state, bool status)
{
	char msg[512];
	uint32_t clients = atomic_load_explicit(&w->b->shared.clients, memory_order_relaxed);
	size_t n = 0;
	int ret;

	if (state)
		n = (size_t)snprintf(msg, sizeof(msg), "%s%s", state, status ? "\n" : "");
	if (status && n < sizeof(msg))
		service_status_line(w, clients, msg + n, sizeof(msg) - n);
	w->service.clients = clients;
	ret = sd_notify(0, msg);
	if (ret < 0 && !w->service.failed) {
		w->service.failed = true;
		log_msg(&w->log, LOG_T_WARNING, "Warning: sd_notify: %s", strerror(-ret));
	}
}

void service_ready(struct worker *w)
{
	service_send(w, "READY=1", true);
}

void service_reloading(struct worker *w)
{
	struct timespec ts;
	char state[96];

	/* systemd 253+ wants the time with RELOADING=1 (Type=notify-reload); older ones ignore it.
	 */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=Reloading",
	         (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
	service_send(w, state, false);
}

void service_reloaded(struct worker *w)
{
	service_send(w, "READY=1", true);
}

void service_stopping(struct worker *w)
{
	service_send(w, "STOPPING=1\nSTATUS=Shutting down", false);
}

void service_tick(struct worker *w)
{
	uint32_t clients;

	if (w->now_ms < w->service.next_ms)
		return;
	w->service.next_ms = w->now_ms + SERVICE_STATUS_MS;
	clients = atomic_load_explicit(&w->b->shared.clients, memory_order_relaxed);
	if (clients != w->service.clients)
		service_send(w, NULL, true);
}
