/*
 * cloudtrail.h — the CloudTrail LookupEvents API over kinko's audit log.
 *
 * JSON 1.1, X-Amz-Target
 * com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents,
 * SigV4 service "cloudtrail". The caller sees the management events of
 * its own account in the region it signed for, newest first, filtered by
 * at most one LookupAttribute and by StartTime/EndTime, 50 per page.
 */
#ifndef KINKO_CLOUDTRAIL_CLOUDTRAIL_H
#define KINKO_CLOUDTRAIL_CLOUDTRAIL_H

#include <jansson.h>
#include "req/req.h"

/* The CloudTrail operation table, for the pipeline's registry (api_register_service). */
const struct api_service *cloudtrail_service_table(void);

K_MUST_CHECK k_status cloudtrail_op_lookup_events(struct api_ctx *c, json_t *in, json_t *out);

#endif
