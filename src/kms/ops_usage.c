/*
 * ops_usage.c — GetKeyLastUsage, read from the last-use index that the
 * audit trail keeps (audit/lastuse.c), merged with the store's record of
 * the cluster's last use.
 *
 * GetKeyLastUsage (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyLastUsage.html):
 * "Returns usage information about the last successful cryptographic
 * operation performed with a specified KMS key, including the operation
 * type, timestamp, and associated CloudTrail event ID." TrackingStartDate
 * is "the date from which KMS began recording cryptographic activity for
 * this key, or the date the KMS key was created, whichever is later";
 * "Alias names are not supported" as KeyId.
 *
 * After a restart the audit index reads the records written before it
 * (its backlog) once the server listens; until it has, a key not used
 * since the start may have its last use in the part not yet read, so the
 * call answers DependencyTimeoutException (503, which the SDKs retry)
 * rather than an older use or none. A use noted in the start's second or
 * later is answered: no record of the backlog is later than the start.
 */
#include <stdint.h>

#include "audit/audit.h"
#include "kms/kms.h"
#include "core/banned.h"

k_status kms_op_get_key_last_usage(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id;
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	struct kms_key *k = NULL;
	GUARD(kms_op_key(c, &k));
	struct audit_lastuse u;
	bool found = audit_lastuse_get_cluster(k->arn, &u);
	if (audit_enabled() && !audit_index_backlog_read() &&
	    !(found && u.t >= audit_index_opened_at())) {
		kms_key_unref(k);
		return K_E_DEPENDENCY_TIMEOUT;
	}
	json_t *cd = json_object_get(k->doc, "CreationDate");
	int64_t created = kjson_date_seconds(cd);
	int64_t start = audit_lastuse_tracking_start();
	if (start == 0 || !audit_enabled())
		start = c->now;
	int64_t tracking = created > start ? created : start;
	json_object_set_new(out, "KeyId", json_string(k->id));
	json_object_set_new(out, "KeyCreationDate",
			    json_is_number(cd) ? json_incref(cd) : json_integer(0));
	json_object_set_new(out, "TrackingStartDate", json_integer((json_int_t)tracking));
	if (found)
		json_object_set_new(out, "KeyLastUsage",
				    json_pack("{s:s,s:I,s:s,s:s}", "Operation", u.op, "Timestamp",
					      (json_int_t)u.t, "CloudTrailEventId", u.event_id,
					      "KmsRequestId", u.request_id));
	kms_key_unref(k);
	return K_OK;
}
