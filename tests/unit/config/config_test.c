/*
 * config_test.c — members of the configuration file that config_load_file()
 * reads into struct config: the test-mode switch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/json.h"
#include "testlib.h"

static k_status load(const char *text, struct config *cfg, struct kbuf *msg)
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

/* The test-mode switch: a boolean, false unless the file says true. */
static void test_test_mode_switch(void)
{
	struct config cfg;
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	CHECK_EQ_INT(load("{}", &cfg, &msg), K_OK);
	CHECK(!cfg.test_mode_outside_dev);
	config_release();
	CHECK_EQ_INT(load("{\"" CONFIG_TEST_MODE_SWITCH "\": true}", &cfg, &msg), K_OK);
	CHECK(cfg.test_mode_outside_dev);
	config_release();
	CHECK_EQ_INT(load("{\"" CONFIG_TEST_MODE_SWITCH "\": false}", &cfg, &msg), K_OK);
	CHECK(!cfg.test_mode_outside_dev);
	config_release();
	CHECK_EQ_INT(load("{\"" CONFIG_TEST_MODE_SWITCH "\": \"yes\"}", &cfg, &msg), K_E_VALIDATION);
	CHECK(strstr(kbuf_cstr(&msg), CONFIG_TEST_MODE_SWITCH) != NULL);
	CHECK(!cfg.test_mode_outside_dev);
	config_release();
	kbuf_release(&msg);
}

int main(void)
{
	kjson_init();
	RUN(test_test_mode_switch);
	return tl_summary();
}
