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
#include "config/load.h"

/* The test-mode switch: a boolean, false unless the file says true. */
static void test_test_mode_switch(void)
{
	struct config cfg;
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	CHECK_STATUS(load("{}", &cfg, &msg), K_OK);
	CHECK(!cfg.test_mode_outside_dev);
	config_release();
	CHECK_STATUS(load("{\"" CONFIG_TEST_MODE_SWITCH "\": true}", &cfg, &msg), K_OK);
	CHECK(cfg.test_mode_outside_dev);
	config_release();
	CHECK_STATUS(load("{\"" CONFIG_TEST_MODE_SWITCH "\": false}", &cfg, &msg), K_OK);
	CHECK(!cfg.test_mode_outside_dev);
	config_release();
	CHECK_STATUS(load("{\"" CONFIG_TEST_MODE_SWITCH "\": \"yes\"}", &cfg, &msg),
		     K_E_VALIDATION);
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
