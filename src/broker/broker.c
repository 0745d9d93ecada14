/*
 * Broker start-up and shut-down: derived limits, listening sockets, signals (a signalfd read
 * through the ring, so no handler and no global flag), daemonizing, the pid file.
 */
#include "broker.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
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

#include "base/alloc.h"
#include "starling/codec.h"
#include "worker.h"

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
}

/* Binds every address of one listener (IPv4 and IPv6 for a wildcard address). */
static int broker_listen(struct broker *b, const char *host, uint16_t port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res, *ai;
	char portstr[8];
	int ret, bound = 0;

	snprintf(portstr, sizeof(portstr), "%u", port);
	ret = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
	if (ret != 0) {
		log_msg(&b->log, LOG_T_ERROR, "Error: cannot resolve %s: %s", host,
		        gai_strerror(ret));
		return ST_ERR_CONFIG;
	}
	for (ai = res; ai && b->nlisten < 2 * CONFIG_LISTENERS_MAX; ai = ai->ai_next) {
		int one = 1, fd;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
			log_msg(&b->log, LOG_T_ERROR, "Error: cannot listen on %s port %u: %s",
			        host && *host ? host : "*", port, strerror(errno));
			close(fd);
			freeaddrinfo(res);
			return ST_ERR_SYS;
		}
		getsockname(fd, (struct sockaddr *)&ss, &sl);
		b->listen_ports[b->nlisten] =
		        ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                       : ((struct sockaddr_in *)&ss)->sin_port);
		b->listen_fds[b->nlisten++] = fd;
		log_msg(&b->log, LOG_T_NOTICE, "Opening %s listen socket on port %u.",
		        ai->ai_family == AF_INET6 ? "ipv6" : "ipv4",
		        b->listen_ports[b->nlisten - 1]);
		bound++;
	}
	freeaddrinfo(res);
	return bound ? ST_OK : ST_ERR_SYS;
}

static int broker_signals(struct broker *b)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
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
	int ret;

	for (unsigned i = 0; i < cfg->listener_count; i++) {
		ret = broker_listen(b, cfg->listeners[i].bind, cfg->listeners[i].port);
		if (ret != ST_OK)
			return ret;
	}
	return ST_OK;
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

int broker_init(struct broker *b, const struct config *cfg)
{
	int ret;

	memset(b, 0, sizeof(*b));
	b->cfg = *cfg;
	b->sig_fd = -1;
	b->start_s = (uint64_t)time(NULL);
	if (getrandom(&b->instance_salt, sizeof(b->instance_salt), 0) != sizeof(b->instance_salt))
		b->instance_salt = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	broker_limits(b);
	if (log_open(&b->log, &b->cfg) != ST_OK)
		return ST_ERR_SYS;
	log_msg(&b->log, LOG_T_NOTICE, "starlingd starting");
	broker_raise_nofile(b);
	ret = broker_bind_all(b);
	if (ret != ST_OK)
		return ret;
	if (cfg->daemonize && broker_daemonize(b) != ST_OK)
		return ST_ERR_SYS;
	ret = broker_pid_file(b);
	if (ret != ST_OK)
		return ret;
	return broker_signals(b);
}

int broker_run(struct broker *b)
{
	int ret;

	b->workers = calloc(1, sizeof(*b->workers));
	if (!b->workers)
		return 1;
	b->nworkers = 1;
	alloc_bind_thread_arena();
	ret = worker_init(&b->workers[0], b, 0, b->listen_fds, b->listen_ports, b->nlisten,
	                  b->sig_fd);
	if (ret == ST_OK) {
		b->log.topic_fn = worker_log_topic;
		b->log.topic_ctx = &b->workers[0];
		ret = worker_run(&b->workers[0]);
		b->log.topic_fn = NULL;
	}
	return ret == ST_OK ? 0 : 1;
}

void broker_fini(struct broker *b)
{
	for (unsigned i = 0; i < b->nworkers; i++)
		worker_fini(&b->workers[i]);
	free(b->workers);
	for (unsigned i = 0; i < b->nlisten; i++)
		close(b->listen_fds[i]);
	if (b->sig_fd >= 0)
		close(b->sig_fd);
	if (b->pid_file_written)
		unlink(b->cfg.pid_file);
	log_msg(&b->log, LOG_T_NOTICE, "starlingd stopped");
	log_close(&b->log);
}
