/*
 * Broker start-up and shut-down: derived limits, listening sockets, signals (a signalfd read
 * through the ring, so no handler and no global flag), daemonizing, the pid file.
 */
#include "broker.h"
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "base/alloc.h"
#include "base/privdrop.h"
#include "conn_http.h"
#include "conn_tls.h"
#include "io/tls.h"
#include "starling/codec.h"
#include "worker.h"
#include "xw.h"

/* Room for everything around a PUBLISH payload: fixed header, topic, id, properties. */
#define PUBLISH_OVERHEAD_MAX (5u + 2u + 65535u + 2u + 4u + 65536u)

static void broker_limits(struct broker *b)
{
	const struct config *cfg = &b->cfg;
	uint64_t max_packet = (uint64_t)ST_REMLEN_MAX + ST_FIXED_HEADER_MAX;

	if (cfg->message_size_limit &&
	    (uint64_t)cfg->message_size_limit + PUBLISH_OVERHEAD_MAX < max_packet)
		max_packet = (uint64_t)cfg->message_size_limit + PUBLISH_OVERHEAD_MAX;
	if (cfg->max_packet_size && cfg->max_packet_size < max_packet)
		max_packet = cfg->max_packet_size;
	b->max_packet = (uint32_t)max_packet;
	b->max_payload = cfg->message_size_limit;
	b->inflight_max = (cfg->max_inflight_messages == 0 || cfg->max_inflight_messages > 65535)
	                          ? 65535
	                          : (uint16_t)cfg->max_inflight_messages;
	b->receive_max = (cfg->receive_maximum == 0 || cfg->receive_maximum > 65535)
	                         ? 65535
	                         : (uint16_t)cfg->receive_maximum;
	b->output_memory = cfg->max_output_memory;
	if (!b->output_memory) {
		/* An eighth of the RAM: slow readers may cost that much, never the machine. */
		long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);

		b->output_memory = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page / 8
		                                         : (uint64_t)1 << 30;
		/* Under memory_limit, slow readers' output may take half of it: back-pressure
		 * on them comes before the refusal of every PUBLISH (README, memory_limit). */
		if (cfg->limits.memory_limit && cfg->limits.memory_limit / 2 < b->output_memory)
			b->output_memory = cfg->limits.memory_limit / 2;
	}
}

/*
 * Whether a socket without SO_REUSEPORT may bind addr: the kernel lets any process of the same
 * user join a reuseport group, so without this check a second starlingd on the same port would
 * silently take half of the first one's connections instead of failing as Mosquitto does.
 */
static int broker_port_free(const struct sockaddr *addr, socklen_t len)
{
	int one = 1, ret, fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	ret = bind(fd, addr, len);
	if (ret != 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	close(fd);
	return 0;
}

static int broker_socket(const struct sockaddr *addr, socklen_t len, bool reuseport,
                         const char *ifname);

#define BIND_RETRY_MS 2000 /* how long a port still held by a broker just killed is waited for */

/*
 * The first socket of an address. A broker killed a moment ago (kill -9, then a restart by
 * systemd or a test) may still hold its listening sockets for a few milliseconds: io_uring
 * releases the files of a dead process's ring from a kernel worker, after the process is gone.
 * So a busy port is tried again for a while before it is an error.
 */
static int broker_socket_first(struct broker *b, const struct sockaddr *addr, socklen_t len,
                               const char *ifname)
{
	for (unsigned waited = 0;; waited += 50) {
		int fd = -1;

		if (b->nworkers == 1 || broker_port_free(addr, len) == 0)
			fd = broker_socket(addr, len, b->nworkers > 1, ifname);
		if (fd >= 0 || errno != EADDRINUSE || waited >= BIND_RETRY_MS)
			return fd;
		if (waited == 0)
			log_msg(&b->log, LOG_T_NOTICE, "Port busy, trying again for up to %u ms.",
			        BIND_RETRY_MS);
		usleep(50000);
	}
}

/*
 * A listening socket on addr; with reuseport, one of a group the kernel spreads accepts over.
 * ifname (bind_interface, or NULL): only connections arriving through that interface are
 * taken (SO_BINDTODEVICE, which needs no privilege on an unbound socket since Linux 5.7).
 */
static int broker_socket(const struct sockaddr *addr, socklen_t len, bool reuseport,
                         const char *ifname)
{
	int one = 1, fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (addr->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if ((ifname &&
	     setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) != 0) ||
	    bind(fd, addr, len) != 0 || listen(fd, 4096) != 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* The address family a listener's socket_domain asks getaddrinfo for. */
static int broker_family(const struct config_listener_opts *o)
{
	if (o && o->socket_domain == CONFIG_DOMAIN_IPV4)
		return AF_INET;
	if (o && o->socket_domain == CONFIG_DOMAIN_IPV6)
		return AF_INET6;
	return AF_UNSPEC;
}

/* Closes the sockets of address i that workers 0..n-1 opened (an optional address failed). */
static void broker_unlisten(int *fds, unsigned i, unsigned n)
{
	for (unsigned w = 0; w < n; w++)
		close(fds[w * BROKER_ADDRS_MAX + i]);
}

/*
 * Binds every address of one listener (IPv4 and IPv6 for a wildcard address, one of them with
 * socket_domain) once per worker: worker 0's socket first (which resolves a port 0), then the
 * others on the same address and port. fds[w * BROKER_ADDRS_MAX + i] receives worker w's
 * socket of address i. metrics: a metrics_listener (cfg_index indexes cfg.metrics). optional:
 * a failure is a warning (local-only mode's ::1, which Mosquitto also only tries).
 */
static int broker_listen(struct broker *b, unsigned cfg_index, const char *host, uint16_t port,
                         int *fds, bool metrics, bool optional)
{
	const struct config_listener_opts *o = metrics ? NULL : &b->cfg.listeners[cfg_index].opts;
	const char *ifname = o && o->bind_interface[0] ? o->bind_interface : NULL;
	struct addrinfo hints = {.ai_family = broker_family(o),
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res, *ai;
	char portstr[8];
	int ret, bound = 0;

	snprintf(portstr, sizeof(portstr), "%u", port);
	ret = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
	if (ret != 0) {
		log_msg(&b->log, optional ? LOG_T_WARNING : LOG_T_ERROR,
		        "%s: cannot resolve %s: %s", optional ? "Warning" : "Error",
		        host && *host ? host : "*", gai_strerror(ret));
		return optional ? ST_OK : ST_ERR_CONFIG;
	}
	for (ai = res; ai && b->nlisten < BROKER_ADDRS_MAX; ai = ai->ai_next) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		unsigned i = b->nlisten;

		for (unsigned w = 0; w < b->nworkers; w++) {
			int fd;

			if (w > 0)
				fd = broker_socket((struct sockaddr *)&ss, sl, true, ifname);
			else
				fd = broker_socket_first(b, ai->ai_addr, ai->ai_addrlen, ifname);
			if (fd < 0) {
				log_msg(&b->log, optional ? LOG_T_WARNING : LOG_T_ERROR,
				        "%s: cannot listen on %s port %u%s%s: %s",
				        optional ? "Warning" : "Error", host && *host ? host : "*",
				        port, ifname ? " on interface " : "", ifname ? ifname : "",
				        strerror(errno));
				broker_unlisten(fds, i, w);
				freeaddrinfo(res);
				return optional ? ST_OK : ST_ERR_SYS;
			}
			fds[w * BROKER_ADDRS_MAX + i] = fd;
			if (w == 0)
				getsockname(fd, (struct sockaddr *)&ss, &sl);
		}
		b->listen_ports[i] =
		        ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                       : ((struct sockaddr_in *)&ss)->sin_port);
		b->listen_cfg[i] = (uint16_t)cfg_index;
		b->listen_metrics[i] = metrics;
		b->nlisten++;
		log_msg(&b->log, LOG_T_NOTICE, "Opening %s%s %slisten socket on port %u%s%s.",
		        !metrics && b->cfg.listeners[cfg_index].protocol == CONFIG_PROTO_WEBSOCKETS
		                ? "websockets "
		                : "",
		        ai->ai_family == AF_INET6 ? "ipv6" : "ipv4", metrics ? "metrics " : "",
		        b->listen_ports[i], ifname ? " on interface " : "", ifname ? ifname : "");
		bound++;
	}
	freeaddrinfo(res);
	return bound || optional ? ST_OK : ST_ERR_SYS;
}

static int broker_signals(struct broker *b)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP); /* reload (reload.h) */
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return ST_ERR_SYS;
	signal(SIGPIPE, SIG_IGN);
	b->sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (b->sig_fd < 0) {
		log_msg(&b->log, LOG_T_ERROR, "Error: signalfd: %s", strerror(errno));
		return ST_ERR_SYS;
	}
	return ST_OK;
}

static int broker_daemonize(struct broker *b)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0) {
		log_msg(&b->log, LOG_T_ERROR, "Error: fork: %s", strerror(errno));
		return ST_ERR_SYS;
	}
	if (pid > 0)
		_exit(0);
	setsid();
	if (chdir("/") != 0)
		return ST_ERR_SYS;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	return ST_OK;
}

static int broker_pid_file(struct broker *b)
{
	FILE *f;

	if (!b->cfg.pid_file[0])
		return ST_OK;
	f = fopen(b->cfg.pid_file, "we");
	if (!f) {
		log_msg(&b->log, LOG_T_ERROR, "Error: cannot write pid file %s: %s",
		        b->cfg.pid_file, strerror(errno));
		return ST_ERR_SYS;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
	b->pid_file_written = true;
	return ST_OK;
}

static int broker_bind_all(struct broker *b)
{
	const struct config *cfg = &b->cfg;
	const unsigned stride = BROKER_ADDRS_MAX;
	int *fds = malloc((size_t)b->nworkers * stride * sizeof(*fds));
	int ret = ST_OK;

	if (!fds)
		return ST_ERR_NOMEM;
	for (unsigned i = 0; i < cfg->listener_count && ret == ST_OK; i++) {
		unsigned first = b->nlisten;

		ret = broker_listen(b, i, cfg->listeners[i].bind, cfg->listeners[i].port, fds,
		                    false, false);
		/* Local-only mode: ::1 on the port 127.0.0.1 got (a -p 0 resolves there). */
		if (ret == ST_OK && cfg->listeners[i].loopback_v6 && b->nlisten > first)
			ret = broker_listen(b, i, "::1", b->listen_ports[first], fds, false, true);
	}
	for (unsigned i = 0; i < cfg->metrics_count && ret == ST_OK; i++)
		ret = broker_listen(b, i, cfg->metrics[i].bind, cfg->metrics[i].port, fds, true,
		                    false);
	/* Packed per worker: worker w's sockets are listen_fds[w * nlisten ..]. */
	b->listen_fds = malloc((size_t)b->nworkers * (b->nlisten ? b->nlisten : 1) * sizeof(int));
	for (unsigned w = 0; w < b->nworkers; w++)
		for (unsigned i = 0; i < b->nlisten; i++) {
			if (b->listen_fds)
				b->listen_fds[w * b->nlisten + i] = fds[w * stride + i];
			else
				close(fds[w * stride + i]);
		}
	free(fds);
	if (!b->listen_fds) {
		b->nlisten = 0;
		return ST_ERR_NOMEM;
	}
	return ret;
}

/*
 * Every connection is a descriptor: the soft RLIMIT_NOFILE (often 1024) is raised to the hard
 * limit, as far as max_connections can use it.
 */
static void broker_raise_nofile(struct broker *b)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log_msg(&b->log, LOG_T_WARNING, "Warning: cannot raise RLIMIT_NOFILE: %s",
		        strerror(errno));
}

/*
 * How many rings of these parameters RLIMIT_MEMLOCK lets the process lock (UINT_MAX: no limit
 * applies). A root start that becomes `user` loses CAP_IPC_LOCK, after which ring memory counts
 * against the limit: the hard limit is first raised to what n rings need, which root may still
 * do (with CAP_SYS_RESOURCE; a systemd unit's LimitMEMLOCK= does it otherwise).
 */
static unsigned broker_memlock_fit(struct broker *b, const struct ring_params *rp, unsigned n)
{
	size_t per = ring_memlock_bytes(rp);
	struct rlimit rl;

	if (!b->priv.drop)
		return ring_memlock_rings(rp);
	if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0)
		return UINT_MAX;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < per * n) {
		struct rlimit up = {.rlim_cur = per * n, .rlim_max = per * n};

		if (setrlimit(RLIMIT_MEMLOCK, &up) == 0)
			rl = up;
	}
	return rl.rlim_max == RLIM_INFINITY ? UINT_MAX : (unsigned)(rl.rlim_max / per);
}

/*
 * The worker count: worker_threads, or one per CPU the process may run on; and the CPUs
 * cpu_affinity pins them to (the i-th allowed CPU for worker i).
 */
static void broker_workers(struct broker *b)
{
	cpu_set_t set;
	unsigned ncpus = 0;

	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int c = 0; c < CPU_SETSIZE && ncpus < BROKER_WORKERS_MAX; c++)
			if (CPU_ISSET(c, &set))
				b->cpus[ncpus++] = c;
	if (ncpus == 0)
		b->cpus[ncpus++] = 0;
	b->nworkers = b->cfg.worker_threads ? b->cfg.worker_threads : ncpus;
	if (!b->cfg.worker_threads && b->cfg.event_backend != CONFIG_BACKEND_EPOLL) {
		/* The default must start: no more rings than RLIMIT_MEMLOCK lets this user lock. */
		struct ring_params rp;
		unsigned fit;

		worker_ring_params(b->nworkers, RING_BACKEND_IO_URING, &rp);
		fit = broker_memlock_fit(b, &rp, b->nworkers);
		if (fit < b->nworkers) {
			b->nworkers = fit ? fit : 1;
			b->memlock_capped = ncpus;
		}
	}
	for (unsigned i = ncpus; i < b->nworkers; i++)
		b->cpus[i] = b->cpus[i % ncpus];
}

/* Channels between every ordered pair of workers, their interest summary and snapshots. */
static int broker_shared_init(struct broker *b)
{
	struct broker_shared *sh = &b->shared;
	unsigned n = b->nworkers;
	/* Channel size: room for bursts, but total memory kept in check as workers multiply. */
	uint32_t cap = b->cfg.worker_channel_size ? b->cfg.worker_channel_size
	               : n <= 8                   ? 16384
	               : n <= 32                  ? 4096
	                                          : 1024;

	_Static_assert(CONFIG_WORKERS_MAX <= BROKER_WORKERS_MAX, "a worker mask is 64 bits");
	atomic_init(&sh->clients, 0);
	for (unsigned i = 0; i < CONFIG_LISTENERS_MAX; i++)
		atomic_init(&sh->listener_clients[i], 0);
	atomic_init(&sh->retain_seq, 0);
	atomic_init(&sh->next_conn_id, 0);
	atomic_init(&sh->stopping, false);
	atomic_init(&sh->start_failed, false);
	if (pthread_barrier_init(&sh->start, NULL, n) != 0)
		return ST_ERR_NOMEM;
	sh->barrier_ready = true;
	if (b->cfg.bridge_count) {
		size_t bytes = b->cfg.bridge_count * sizeof(*sh->bridge_snap);

		sh->bridge_snap = aligned_alloc(64, bytes);
		if (!sh->bridge_snap)
			return ST_ERR_NOMEM;
		memset(sh->bridge_snap, 0, bytes);
	}
	if (n == 1)
		return ST_OK;
	sh->snap = calloc(n, sizeof(*sh->snap));
	sh->chans = calloc((size_t)n * n, sizeof(*sh->chans));
	if (!sh->snap || !sh->chans || interest_init(&sh->interest, 16) != ST_OK)
		return ST_ERR_NOMEM;
	for (unsigned i = 0; i < n * n; i++)
		if (i / n != i % n && chan_init(&sh->chans[i], cap, 0) != ST_OK)
			return ST_ERR_NOMEM;
	return ST_OK;
}

/* The password and ACL files: a missing or bad one stops the start, naming file and line. */
static int broker_auth_load(struct broker *b)
{
	struct auth_set *set = NULL;
	char err[1024];
	int ret = auth_set_load(&b->cfg, &set, err, sizeof(err));

	if (ret != ST_OK) {
		log_msg(&b->log, LOG_T_ERROR, "Error: %s", err);
		return ret;
	}
	atomic_init(&b->shared.auth, set);
	return ST_OK;
}

/* A listener's name in messages: "port 8883" or "port 8883 on ADDRESS". */
static void broker_listener_name(const struct config_listener *l, char *buf, size_t cap)
{
	snprintf(buf, cap, "port %u%s%s", l->port, l->bind[0] ? " on " : "", l->bind);
}

/*
 * The TLS listeners' contexts, before anything listens: a certificate or key that cannot be
 * used is a start-up error naming the file. Logs once whether kernel TLS could be used
 * (kernel-notes/tls.md): records are encrypted in user space either way for now.
 */
static int broker_tls_init(struct broker *b)
{
	char err[512], name[300];
	bool any = false;

	for (unsigned i = 0; i < b->cfg.listener_count; i++) {
		const struct config_listener *l = &b->cfg.listeners[i];

		broker_listener_name(l, name, sizeof(name));
		if (!config_listener_is_tls(l)) {
			if (l->tls.certfile[0] || l->tls.keyfile[0]) {
				log_msg(&b->log, LOG_T_ERROR,
				        "Error: listener %s: both certfile and keyfile are needed "
				        "for TLS.",
				        name);
				return ST_ERR_CONFIG;
			}
			continue;
		}
		/* Mosquitto may take PSK keys from a plugin; here they come from a psk_file. */
		if (l->opts.psk_hint[0] && !l->auth.psk_file[0]) {
			log_msg(&b->log, LOG_T_ERROR,
			        "Error: listener %s: psk_hint needs a psk_file with the keys.",
			        name);
			return ST_ERR_CONFIG;
		}
		b->tls[i] = calloc(1, sizeof(*b->tls[i]));
		if (!b->tls[i])
			return ST_ERR_NOMEM;
		if (tls_server_init_psk(b->tls[i], &l->tls, l->opts.psk_hint,
		                        l->opts.psk_hint[0] ? conn_tls_psk : NULL, err,
		                        sizeof(err)) != ST_OK) {
			log_msg(&b->log, LOG_T_ERROR, "Error: listener %s: %s.", name, err);
			return ST_ERR_CONFIG;
		}
		any = true;
	}
	if (any) {
		bool ktls = tls_ktls_available(err, sizeof(err));

		log_msg(&b->log, LOG_T_NOTICE,
		        "Kernel TLS %s: %s; TLS records are encrypted in user space, one send per "
		        "connection per loop iteration.",
		        ktls ? "is available" : "is not available", err);
	}
	return ST_OK;
}

int broker_tls_reload(struct broker *b)
{
	char err[512], name[300];
	int ret = ST_OK;

	for (unsigned i = 0; i < b->cfg.listener_count; i++) {
		if (!b->tls[i])
			continue;
		broker_listener_name(&b->cfg.listeners[i], name, sizeof(name));
		if (tls_server_reload(b->tls[i], err, sizeof(err)) == ST_OK) {
			log_msg(&b->log, LOG_T_NOTICE, "Reloaded the certificates of listener %s.",
			        name);
		} else {
			ret = ST_ERR_CONFIG;
			log_msg(&b->log, LOG_T_ERROR,
			        "Error: listener %s keeps its certificates: %s.", name, err);
		}
	}
	return ret;
}

/*
 * The locked memory the rings need (io_uring only). A start that stays who it is:
 * ring_memlock_reserve (the soft limit raised as far as the hard one allows). A root start that
 * becomes `user`: the soft limit raised now to what every worker's ring needs, since the user
 * will count it all (the hard limit was raised, where allowed, by broker_memlock_fit).
 */
static int broker_memlock(struct broker *b)
{
	struct ring_params rp;
	struct rlimit rl;
	char err[512];
	size_t need;

	if (b->backend != RING_BACKEND_IO_URING)
		return ST_OK;
	worker_ring_params(b->nworkers, RING_BACKEND_IO_URING, &rp);
	if (!b->priv.drop) {
		if (ring_memlock_reserve(&rp, b->nworkers, err, sizeof(err)) == 0)
			return ST_OK;
		log_msg(&b->log, LOG_T_ERROR, "Error: %s", err);
		return ST_ERR_SYS;
	}
	need = ring_memlock_bytes(&rp) * b->nworkers;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= need)
		return ST_OK;
	if (broker_memlock_fit(b, &rp, b->nworkers) >= b->nworkers) {
		getrlimit(RLIMIT_MEMLOCK, &rl);
		rl.rlim_cur =
		        rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
		if (setrlimit(RLIMIT_MEMLOCK, &rl) == 0)
			return ST_OK;
	}
	log_msg(&b->log, LOG_T_ERROR,
	        "Error: as user %s the io_uring rings of %u worker%s need about %zu KiB of locked "
	        "memory, but RLIMIT_MEMLOCK is %llu KiB (hard %llu KiB) and root cannot raise it "
	        "here: raise it (ulimit -l, or LimitMEMLOCK= in a systemd unit) or use fewer "
	        "worker_threads",
	        b->priv.name, b->nworkers, b->nworkers > 1 ? "s" : "", need / 1024,
	        (unsigned long long)rl.rlim_cur / 1024, (unsigned long long)rl.rlim_max / 1024);
	return ST_ERR_SYS;
}

/*
 * The event loop of every worker: event_backend, where auto is io_uring if a ring can be set
 * up with the locked memory all workers need, else epoll with the reason in why (else empty).
 */
static int broker_backend(struct broker *b, char *why, size_t whylen)
{
	static const enum ring_backend want[] = {
	        [CONFIG_BACKEND_AUTO] = RING_BACKEND_AUTO,
	        [CONFIG_BACKEND_IO_URING] = RING_BACKEND_IO_URING,
	        [CONFIG_BACKEND_EPOLL] = RING_BACKEND_EPOLL,
	};
	struct ring_params rp;
	char err[512];

	why[0] = '\0';
	b->backend = want[b->cfg.event_backend];
	worker_ring_params(b->nworkers, RING_BACKEND_IO_URING, &rp);
	if (ring_select(&b->backend, &rp, b->nworkers, err, sizeof(err)) != 0) {
		log_msg(&b->log, LOG_T_ERROR, "Error: %s (event_backend io_uring).", err);
		return ST_ERR_SYS;
	}
	if (b->cfg.event_backend == CONFIG_BACKEND_AUTO && b->backend == RING_BACKEND_EPOLL) {
		snprintf(why, whylen, "%s", err);
		/* A worker count held down by RLIMIT_MEMLOCK for the rings is free again. */
		if (b->memlock_capped) {
			b->nworkers = b->memlock_capped;
			b->memlock_capped = 0;
		}
	}
	return ST_OK;
}

/*
 * What the start reads and creates on disk, done as the user the broker will run as
 * (privdrop.h): password and ACL files, the persistence directory, TLS certificates.
 */
static int broker_init_files(struct broker *b)
{
	int ret = broker_auth_load(b);

	if (ret != ST_OK)
		return ret;
	if (broker_shared_init(b) != ST_OK) {
		log_msg(&b->log, LOG_T_ERROR, "Error: out of memory setting up %u workers",
		        b->nworkers);
		return ST_ERR_NOMEM;
	}
	/* Before anything listens: a store that cannot be read stops the start. */
	ret = persist_broker_init(b);
	if (ret == ST_OK)
		ret = conn_http_open_dirs(b);
	if (ret != ST_OK)
		return ret;
	return broker_tls_init(b);
}

/* Opens the log as the user the broker will run as (privdrop_plan has run), then logs the
 * start. */
static int broker_init_log(struct broker *b)
{
	char err[512];
	int ret;

	ret = privdrop_enter(&b->priv, err, sizeof(err));
	if (ret != ST_OK) {
		fprintf(stderr, "Error: %s\n", err);
		return ret;
	}
	if (log_open(&b->log, &b->cfg) != ST_OK)
		return ST_ERR_SYS;
	log_msg(&b->log, LOG_T_NOTICE, "starlingd starting with %u worker thread%s", b->nworkers,
	        b->nworkers > 1 ? "s" : "");
	if (b->priv.root_default)
		log_msg(&b->log, LOG_T_WARNING,
		        "Warning: running as root: no `user` option and no user \"%s\" to become; "
		        "set `user` in the configuration file.",
		        PRIVDROP_DEFAULT_USER);
	for (unsigned i = 0; i < b->cfg.notice_count; i++)
		log_msg(&b->log, LOG_T_NOTICE, "Notice: %s.", b->cfg.notices[i]);
	if (b->cfg.notices_dropped > 0)
		log_msg(&b->log, LOG_T_NOTICE, "Notice: %u more notices about options.",
		        b->cfg.notices_dropped);
	if (b->memlock_capped)
		log_msg(&b->log, LOG_T_WARNING,
		        "Warning: %u CPUs but RLIMIT_MEMLOCK allows io_uring rings for %u workers; "
		        "raise it (ulimit -l, LimitMEMLOCK=) to use them all.",
		        b->memlock_capped, b->nworkers);
	return ST_OK;
}

int broker_init(struct broker *b, const struct config *cfg)
{
	char err[512], why[512];
	int ret;

	memset(b, 0, sizeof(*b));
	b->cfg = *cfg;
	b->sig_fd = -1;
	b->log.file_fd = -1;
	for (unsigned i = 0; i < CONFIG_LISTENERS_MAX; i++)
		b->http_dir_fd[i] = -1;
	ret = privdrop_plan(&b->priv, &b->cfg, err, sizeof(err));
	if (ret != ST_OK) {
		fprintf(stderr, "Error: %s\n", err);
		return ret;
	}
	broker_workers(b);
	b->start_s = (uint64_t)time(NULL);
	if (getrandom(&b->instance_salt, sizeof(b->instance_salt), 0) != sizeof(b->instance_salt))
		b->instance_salt = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	broker_limits(b);
	ret = broker_init_log(b);
	privdrop_leave(&b->priv);
	if (ret != ST_OK)
		return ret;
	ret = broker_backend(b, why, sizeof(why));
	if (ret != ST_OK)
		return ret;
	if (why[0])
		log_msg(&b->log, LOG_T_WARNING,
		        "Warning: io_uring cannot be used, running on epoll: %s", why);
	log_msg(&b->log, LOG_T_NOTICE, "Event loop: %s.", ring_backend_name(b->backend));
	/* As root, when it was root: the limits, before anything is made on disk. */
	broker_raise_nofile(b);
	ret = broker_memlock(b);
	if (ret != ST_OK)
		return ret;
	if (privdrop_enter(&b->priv, err, sizeof(err)) != ST_OK) {
		log_msg(&b->log, LOG_T_ERROR, "Error: %s", err);
		return ST_ERR_SYS;
	}
	ret = broker_init_files(b);
	privdrop_leave(&b->priv);
	if (ret != ST_OK)
		return ret;
	/* As root again: the sockets. Signals are blocked before anything listens: a client that
	 * sees the port open may send SIGTERM at once, and it must reach the signalfd, not kill
	 * the process. */
	ret = broker_signals(b);
	if (ret != ST_OK)
		return ret;
	ret = broker_bind_all(b);
	if (ret != ST_OK)
		return ret;
	if (privdrop_apply(&b->priv, err, sizeof(err)) != ST_OK) {
		log_msg(&b->log, LOG_T_ERROR, "Error: %s", err);
		return ST_ERR_SYS;
	}
	if (b->priv.drop)
		log_msg(&b->log, LOG_T_NOTICE, "Running as user %s (uid %u, gid %u).", b->priv.name,
		        (unsigned)b->priv.uid, (unsigned)b->priv.gid);
	/* Memory only: libnats's threads start in broker_run, after a fork to the background. */
	ret = cluster_init(b);
	if (ret != ST_OK)
		return ret;
	if (cfg->daemonize && broker_daemonize(b) != ST_OK)
		return ST_ERR_SYS;
	return broker_pid_file(b);
}

/* One worker's thread: its arena, its CPU, its ring; then the loop once every ring exists. */
static void *broker_worker_main(void *arg)
{
	struct worker *w = arg;
	struct broker *b = w->b;
	unsigned index = (unsigned)(w - b->workers);
	int ret;

	alloc_bind_thread_arena();
	if (b->cfg.cpu_affinity) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(b->cpus[index], &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
			log_msg(&b->log, LOG_T_WARNING, "Warning: cannot pin worker %u to CPU %d.",
			        index, b->cpus[index]);
	}
	if (index > 0) {
		char name[16];

		/* top -H and ps -L show which worker is busy; worker 0 is the main thread and keeps
		 * the process's name. */
		snprintf(name, sizeof(name), "starling-w%u", index % 100);
		pthread_setname_np(pthread_self(), name);
	}
	ret = worker_init(w, b, index, index == 0 ? b->sig_fd : -1);
	if (ret != ST_OK)
		atomic_store(&b->shared.start_failed, true);
	pthread_barrier_wait(&b->shared.start);
	if (ret == ST_OK && !atomic_load(&b->shared.start_failed))
		ret = worker_run(w);
	if (ret != ST_OK && b->nworkers > 1 && ring_is_open(&w->ring)) {
		/* A worker that cannot go on stops them all. */
		atomic_store(&b->shared.stopping, true);
		xw_wake_all(w);
		ring_poll(&w->ring, 0);
	}
	return (void *)(intptr_t)ret;
}

int broker_run(struct broker *b)
{
	pthread_t *threads = calloc(b->nworkers, sizeof(*threads));
	unsigned started = 1;
	void *res;
	int ret;

	b->workers = calloc(b->nworkers, sizeof(*b->workers));
	if (!b->workers || !threads) {
		free(threads);
		return 1;
	}
	for (unsigned i = 0; i < b->nworkers; i++)
		b->workers[i].b = b;
	if (cluster_start(b) != ST_OK) {
		free(threads);
		return 1;
	}
	for (; started < b->nworkers; started++)
		if (pthread_create(&threads[started], NULL, broker_worker_main,
		                   &b->workers[started]) != 0)
			break;
	if (started < b->nworkers) {
		/* The barrier counts every worker: stand in for the missing ones, failing. */
		log_msg(&b->log, LOG_T_ERROR, "Error: cannot start worker thread %u: %s", started,
		        strerror(errno));
		atomic_store(&b->shared.start_failed, true);
		for (unsigned i = started; i < b->nworkers; i++)
			pthread_barrier_wait(&b->shared.start);
	}
	/* Worker 0 is this thread: with one worker, starlingd stays single-threaded. */
	ret = (int)(intptr_t)broker_worker_main(&b->workers[0]);
	for (unsigned i = 1; i < started; i++) {
		pthread_join(threads[i], &res);
		if ((int)(intptr_t)res != ST_OK)
			ret = (int)(intptr_t)res;
	}
	free(threads);
	cluster_stop(b);
	if (b->nworkers > 1)
		xw_discard(b);
	/* Every worker has stopped: what follows (freeing, a sanitizer's exit checks) serves no
	 * client, and a supervisor or test may time the shutdown by this line. */
	log_msg(&b->log, LOG_T_NOTICE, "starlingd terminating.");
	return ret == ST_OK && !atomic_load(&b->shared.start_failed) ? 0 : 1;
}

void broker_fini(struct broker *b)
{
	struct broker_shared *sh = &b->shared;

	for (unsigned i = 0; b->workers && i < b->nworkers; i++)
		worker_fini(&b->workers[i]);
	free(b->workers);
	cluster_fini(b);
	for (unsigned i = 0; i < b->nworkers * b->nlisten; i++)
		close(b->listen_fds[i]);
	free(b->listen_fds);
	for (unsigned i = 0; i < CONFIG_LISTENERS_MAX; i++) {
		if (b->tls[i])
			tls_server_fini(b->tls[i]);
		free(b->tls[i]);
	}
	conn_http_close_dirs(b);
	persist_broker_fini(b);
	if (sh->chans)
		for (unsigned i = 0; i < b->nworkers * b->nworkers; i++)
			chan_fini(&sh->chans[i]);
	free(sh->chans);
	free(sh->snap);
	free(sh->bridge_snap);
	interest_fini(&sh->interest);
	if (sh->barrier_ready)
		pthread_barrier_destroy(&sh->start);
	auth_set_free(atomic_load(&sh->auth));
	auth_set_free(sh->auth_retired);
	if (b->sig_fd >= 0)
		close(b->sig_fd);
	if (b->pid_file_written)
		unlink(b->cfg.pid_file);
	log_msg(&b->log, LOG_T_NOTICE, "starlingd stopped");
	log_close(&b->log);
}
