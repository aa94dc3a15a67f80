/*
 * arn_fuzz.c — the ARN parser (core/arn.h).
 *
 * Input: any bytes. k_arn_parse must accept only the shape arn.h states;
 * for an accepted ARN every field lies inside the input, within its bound,
 * and formatting the parse gives back the input byte for byte.
 */
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "core/arn.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inside(struct kslice whole, struct kslice part)
{
	if (part.len > 0 && (part.ptr < whole.ptr || part.ptr + part.len > whole.ptr + whole.len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kslice in = kslice_make(data, size);
	struct k_arn a;
	if (!k_arn_parse(in, &a)) {
		if (a.resource.len != 0 || a.kind != K_ARN_OTHER)
			abort(); /* a refusal leaves the struct zeroed */
		return 0;
	}
	check_inside(in, a.partition);
	check_inside(in, a.service);
	check_inside(in, a.region);
	check_inside(in, a.account);
	check_inside(in, a.resource);
	check_inside(a.resource, a.id);
	if (size > K_ARN_MAX || a.partition.len == 0 || a.partition.len > K_ARN_PARTITION_MAX ||
	    a.service.len == 0 || a.service.len > K_ARN_SERVICE_MAX ||
	    a.region.len > K_ARN_REGION_MAX ||
	    (a.account.len != 0 && a.account.len != K_ARN_ACCOUNT_LEN) || a.resource.len == 0)
		abort();
	if (a.kind != K_ARN_ROOT && a.kind != K_ARN_OTHER && a.id.len == 0)
		abort();
	char out[K_ARN_MAX + 1];
	size_t n = k_arn_format(&a, out, sizeof out);
	if (n != size || memcmp(out, data, size) != 0)
		abort();
	return 0;
}
