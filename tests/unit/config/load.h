/*
 * load.h — the config unit tests' loader: writes `text` to a temporary
 * file and loads it over the defaults with config_load_file().
 */
#ifndef KINKO_TESTS_CONFIG_LOAD_H
#define KINKO_TESTS_CONFIG_LOAD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

static K_MUST_CHECK k_status load(const char *text, struct config *cfg, struct kbuf *msg)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/kinko-configtest-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return K_E_INTERNAL;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	config_defaults(cfg);
	k_status rc = n == (ssize_t)strlen(text) ? config_load_file(cfg, path, msg) : K_E_INTERNAL;
	unlink(path);
	return rc;
}

#endif
