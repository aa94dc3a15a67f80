/*
 * regions.c — AWS's regions and the configuration's additions (see regions.h).
 */
#include "config/regions.h"

#include <stdlib.h>
#include <string.h>

#include "auth/sigv4.h"
#include "core/distance.h"
#include "core/log.h"
#include "core/banned.h"

/*
 * AWS's regions, sorted (strcmp order) for bsearch: the partitions "aws"
 * (commercial), "aws-us-gov" (AWS GovCloud (US)) and "aws-cn" (China), as
 * the AWS SDK for Python lists them (botocore 1.43, data/endpoints.json,
 * "partitions"[].regions).
 * The isolated partitions (aws-iso*, the European Sovereign Cloud) are
 * not here: a deployment that wants one adds it in the configuration.
 */
static const char *const aws_regions[] = {
	"af-south-1",	  "ap-east-1",	    "ap-east-2",      "ap-northeast-1", "ap-northeast-2",
	"ap-northeast-3", "ap-south-1",	    "ap-south-2",     "ap-southeast-1", "ap-southeast-2",
	"ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
	"ca-central-1",	  "ca-west-1",	    "cn-north-1",     "cn-northwest-1", "eu-central-1",
	"eu-central-2",	  "eu-north-1",	    "eu-south-1",     "eu-south-2",	"eu-west-1",
	"eu-west-2",	  "eu-west-3",	    "il-central-1",   "me-central-1",	"me-south-1",
	"mx-central-1",	  "sa-east-1",	    "us-east-1",      "us-east-2",	"us-gov-east-1",
	"us-gov-west-1",  "us-west-1",	    "us-west-2",
};
#define N_AWS_REGIONS (sizeof aws_regions / sizeof aws_regions[0])

static char added[REGIONS_MAX_ADDED][SIGV4_MAX_REGION + 1];
static size_t n_added;

static int cmp_name(const void *key, const void *elem)
{
	return strcmp((const char *)key, *(const char *const *)elem);
}

bool config_region_known(const char *region)
{
	if (region == NULL)
		return false;
	if (bsearch(region, aws_regions, N_AWS_REGIONS, sizeof aws_regions[0], cmp_name) != NULL)
		return true;
	for (size_t i = 0; i < n_added; i++) {
		if (strcmp(added[i], region) == 0)
			return true;
	}
	return false;
}

/* The SigV4 scope's alphabet, which is all a region name can be on the wire. */
static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > SIGV4_MAX_REGION || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
			return false;
	}
	return true;
}

/*
 * An added name one or two letters away from an AWS Region is most likely
 * that Region misspelt ("us-esat-1"): said at start, since kinko would
 * serve it as a Region of its own and a client of the real one would not
 * find its keys there.
 */
static void warn_if_misspelt(size_t i, const char *name)
{
	for (size_t r = 0; r < N_AWS_REGIONS; r++) {
		if (k_edit_distance(name, aws_regions[r]) <= 2) {
			LOG_WARN("config: \"regions\"[%zu] \"%s\" is not an AWS Region (did you "
				 "mean "
				 "\"%s\"?); kinko serves it as a Region of its own",
				 i, name, aws_regions[r]);
			return;
		}
	}
}

k_status config_regions_load(const json_t *list, struct kbuf *msg)
{
	size_t i;
	const json_t *v;
	if (list == NULL)
		return K_OK;
	if (!json_is_array(list)) {
		kbuf_note(msg, "%s", "\"regions\" must be a list of region names");
		return K_E_VALIDATION;
	}
	json_array_foreach(list, i, v)
	{
		const char *name = json_string_value(v);
		if (name == NULL || !valid_name(name)) {
			kbuf_note(msg,
				  "\"regions\"[%zu] is not a region name (1 to %d of a-z, 0-9 and "
				  "'-')",
				  i, SIGV4_MAX_REGION);
			return K_E_VALIDATION;
		}
		if (config_region_known(name))
			continue;
		warn_if_misspelt(i, name);
		if (n_added >= REGIONS_MAX_ADDED) {
			kbuf_note(msg, "\"regions\" adds more than %d names", REGIONS_MAX_ADDED);
			return K_E_LIMIT_EXCEEDED;
		}
		memcpy(added[n_added], name, strlen(name) + 1);
		n_added++;
	}
	return K_OK;
}

void config_regions_release(void)
{
	memset(added, 0, sizeof added);
	n_added = 0;
}
