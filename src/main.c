/*
 * starlingd: parse the command line and configuration, start the broker, run it until
 * SIGINT or SIGTERM.
 */
#include <stdio.h>

#include "broker/broker.h"
#include "base/config.h"
#include "starling/error.h"

int main(int argc, char **argv)
{
	static struct config cfg;
	static struct broker b;
	char err[1024];
	int ret;

	config_defaults(&cfg);
	ret = config_from_args(&cfg, argc, argv, err, sizeof(err));
	if (ret == 1)
		return 0;
	if (ret != ST_OK) {
		fprintf(stderr, "starlingd: %s\n", err);
		return 1;
	}
	config_finish(&cfg);
	if (cfg.cmd_ports_ignored)
		fprintf(stderr, "starlingd: warning: -p is ignored because the configuration file "
		                "defines listeners (as Mosquitto 2 does)\n");
	if (broker_init(&b, &cfg) != ST_OK) {
		broker_fini(&b);
		return 1;
	}
	ret = broker_run(&b);
	broker_fini(&b);
	return ret;
}
