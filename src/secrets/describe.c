/*
 * describe.c — DescribeSecret, and the description of a secret that
 * ListSecrets also renders (sm_describe).
 * https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html
 */
#include <stdio.h>
#include <string.h>

#include "secrets/internal.h"
#include "core/banned.h"

/* {"vid": ["AWSCURRENT"], ...} for the versions that carry labels. */
static json_t *versions_to_stages(const struct sm_secret *s)
{
	json_t *m = json_object();
	const char *vid;
	json_t *v;
	json_object_foreach(json_object_get(s->doc, "Versions"), vid, v)
	{
		json_t *st = json_object_get(v, "Stages");
		if (json_array_size(st) > 0)
			json_object_set_new(m, vid, json_copy(st));
	}
	return m;
}

void sm_copy_member(json_t *out, json_t *doc, const char *member)
{
	json_t *v = json_object_get(doc, member);
	if (v != NULL && !json_is_null(v))
		json_object_set(out, member, v);
}

/*
 * The metadata DescribeSecret and ListSecrets show, as AWS shows it
 * (API_DescribeSecret):
 * - RotationEnabled: "If the secret has never been configured for
 *   rotation, Secrets Manager returns null", so it is left out until
 *   RotateSecret (documents of earlier builds stored false at creation:
 *   false without a rotation function is the same "never");
 * - VersionIdsToStages (SecretVersionsToStages in a list) only when some
 *   version carries a label: a secret created without a value has none;
 * - Tags: left out for a secret never tagged, an empty list once its last
 *   tag was removed ("TagsRemoved");
 * - PrimaryRegion: a replica's primary; a primary with replicas names its
 *   own Region ("If a secret is replicated to other Regions, the replicas
 *   are listed in ReplicationStatus").
 * Dates are seconds since the epoch, with milliseconds (sm_date).
 */
json_t *sm_describe(const struct sm_secret *s, bool for_list)
{
	static const char *const members[] = {"ARN",
					      "Name",
					      "Type",
					      "Description",
					      "KmsKeyId",
					      "RotationEnabled",
					      "RotationLambdaARN",
					      "RotationRules",
					      "LastRotatedDate",
					      "LastChangedDate",
					      "LastAccessedDate",
					      "DeletedDate",
					      "NextRotationDate",
					      "Tags",
					      "OwningService",
					      "CreatedDate",
					      NULL};
	json_t *o = json_object();
	for (size_t i = 0; members[i] != NULL; i++)
		sm_copy_member(o, s->doc, members[i]);
	if (json_is_false(json_object_get(o, "RotationEnabled")) &&
	    json_object_get(s->doc, "RotationLambdaARN") == NULL)
		json_object_del(o, "RotationEnabled");
	if (json_array_size(json_object_get(o, "Tags")) == 0 &&
	    !json_is_true(json_object_get(s->doc, "TagsRemoved")))
		json_object_del(o, "Tags");
	char region[64];
	if (sm_primary_region(s->doc, region, sizeof region))
		json_object_set_new(o, "PrimaryRegion", json_string(region));
	json_t *stages = versions_to_stages(s);
	if (json_object_size(stages) > 0)
		json_object_set_new(o, for_list ? "SecretVersionsToStages" : "VersionIdsToStages",
				    stages);
	else
		json_decref(stages);
	if (!for_list) {
		json_t *rs = json_object_get(s->doc, "ReplicationStatus");
		if (json_array_size(rs) > 0)
			json_object_set(o, "ReplicationStatus", rs);
		/* kinko's own member: the outcome of the last rotation attempt. */
		sm_copy_member(o, s->doc, "KinkoRotationStatus");
	}
	return o;
}

/* DescribeSecret (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html). */
k_status sm_op_describe_secret(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)in;
	struct sm_secret s;
	GUARD(sm_op_secret(c, &s));
	json_t *d = sm_describe(&s, false);
	json_object_update(out, d);
	json_decref(d);
	sm_secret_release(&s);
	return K_OK;
}
