/*
 * regions_test.c — the regions kinko serves (config/regions.h): AWS's
 * commercial, GovCloud and China regions; names the configuration adds;
 * anything else refused; and the configuration's "regions" member as
 * config_load_file() reads it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/regions.h"
#include "core/json.h"
#include "testlib.h"
#include "config/load.h"

/* Every region of the three partitions, the oldest and the newest. */
static void test_aws_regions(void)
{
	static const char *const known[] = {"us-east-1",      "us-east-2",	"us-west-1",
					    "us-west-2",      "af-south-1",	"ap-east-1",
					    "ap-east-2",      "ap-northeast-1", "ap-northeast-2",
					    "ap-northeast-3", "ap-south-1",	"ap-south-2",
					    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
					    "ap-southeast-4", "ap-southeast-5", "ap-southeast-6",
					    "ap-southeast-7", "ca-central-1",	"ca-west-1",
					    "eu-central-1",   "eu-central-2",	"eu-north-1",
					    "eu-south-1",     "eu-south-2",	"eu-west-1",
					    "eu-west-2",      "eu-west-3",	"il-central-1",
					    "me-central-1",   "me-south-1",	"mx-central-1",
					    "sa-east-1",      "us-gov-east-1",	"us-gov-west-1",
					    "cn-north-1",     "cn-northwest-1", NULL};
	for (size_t i = 0; known[i] != NULL; i++) {
		tl_current = known[i];
		CHECK(config_region_known(known[i]));
	}
	tl_current = "test_aws_regions";
	static const char *const unknown[] = {
		"",	      "us-east", "us-east-10", "US-EAST-1",	"us-east-1 ",
		"xx-fake-1",  "my-dc-1", "aws-global", "us-iso-east-1", "eusc-de-east-1",
		"us-east-1-", NULL};
	for (size_t i = 0; unknown[i] != NULL; i++)
		CHECK(!config_region_known(unknown[i]));
	CHECK(!config_region_known(NULL));
}

static void test_added_regions(void)
{
	struct config cfg;
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	CHECK_STATUS(load("{\"regions\": [\"my-dc-1\", \"us-east-1\", \"lab2\"]}", &cfg, &msg),
		     K_OK);
	CHECK(config_region_known("my-dc-1"));
	CHECK(config_region_known("lab2"));
	CHECK(config_region_known("us-east-1"));
	CHECK(!config_region_known("my-dc-2"));
	config_release();
	CHECK(!config_region_known("my-dc-1"));
	CHECK(config_region_known("us-east-1"));

	static const char *const bad[] = {"{\"regions\": \"my-dc-1\"}",
					  "{\"regions\": [\"My-DC-1\"]}",
					  "{\"regions\": [\"\"]}",
					  "{\"regions\": [\"-dc\"]}",
					  "{\"regions\": [\"dc-\"]}",
					  "{\"regions\": [\"dc_1\"]}",
					  "{\"regions\": [1]}",
					  "{\"regions\": [\"abcdefghijklmnopqrstuvwxyz0123456\"]}",
					  NULL};
	for (size_t i = 0; bad[i] != NULL; i++) {
		kbuf_reset(&msg);
		tl_current = bad[i];
		CHECK_STATUS(load(bad[i], &cfg, &msg), K_E_VALIDATION);
		/* The member is named: "regions", or the entry "regions[0]". */
		CHECK(strstr(kbuf_cstr(&msg), "\"regions") != NULL);
		config_release();
	}
	tl_current = "test_added_regions";
	/* 32 characters is the longest a SigV4 scope's region may be. */
	CHECK_STATUS(load("{\"regions\": [\"abcdefghijklmnopqrstuvwxyz012345\"]}", &cfg, &msg),
		     K_OK);
	CHECK(config_region_known("abcdefghijklmnopqrstuvwxyz012345"));
	config_release();

	/* The cap on added names. */
	char big[8192];
	size_t n = (size_t)snprintf(big, sizeof big, "%s", "{\"regions\": [");
	for (int i = 0; i <= REGIONS_MAX_ADDED; i++)
		n += (size_t)snprintf(big + n, sizeof big - n, "%s\"dc-%d\"", i ? "," : "", i);
	snprintf(big + n, sizeof big - n, "%s", "]}");
	kbuf_reset(&msg);
	CHECK_STATUS(load(big, &cfg, &msg), K_E_LIMIT_EXCEEDED);
	config_release();
	kbuf_release(&msg);
}

int main(void)
{
	kjson_init();
	RUN(test_aws_regions);
	RUN(test_added_regions);
	return tl_summary();
}
