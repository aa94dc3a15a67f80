/*
 * event.c — auditing a call (the intent record before a state-changing
 * handler, the event after it, the last-use index) and the events of
 * kinko's own work (the scheduler's rotations and deletions). The event of
 * an API call is formatted in format.c; events of kinko's own work are
 * rare and are built as JSON trees here.
 */
#include "audit/audit.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "audit/internal.h"
#include "core/clock.h"
#include "core/json.h"
#include "metrics/metrics.h"
#include "crypto/uuid.h"
#include "core/thread.h"
#include "core/banned.h"

void audit_iso8601(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

bool audit_parse_iso8601(const char *s, int64_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		return false;
	if (*end == '.') {
		end++;
		while (isdigit((unsigned char)*end))
			end++;
	}
	if (*end != 'Z' || end[1] != 0)
		return false;
	*out = (int64_t)timegm(&tm);
	return true;
}

/* A random (version 4) UUID; a per-thread seed and counter keep it cheap. */
static void new_event_id(char out[37])
{
	crypto_uuid_fast(out);
}

static K_MUST_CHECK k_status write_event(const char *type, json_t *e)
{
	char *s = json_dumps(e, JSON_COMPACT);
	ENSURE(s != NULL, K_E_INTERNAL);
	k_status rc = audit_writer_append(type, s, strlen(s));
	if (k_ok(rc) && strcmp(type, "event") == 0)
		audit_ctindex_note(s, strlen(s)); /* LookupEvents on the other nodes */
	kjson_free(s);
	return rc;
}

static bool is_key_use(const struct audit_op_name *ops, size_t n, const char *src, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(ops[i].event_source, src) == 0 && strcmp(ops[i].event_name, name) == 0)
			return true;
	}
	return false;
}

void audit_lastuse_from_event(json_t *e, const struct audit_op_name *key_use_ops, size_t n_ops)
{
	const char *src = json_string_value(json_object_get(e, "eventSource"));
	const char *name = json_string_value(json_object_get(e, "eventName"));
	if (src == NULL || name == NULL || json_object_get(e, "errorCode") != NULL)
		return;
	/* The operation's row says whether a success is a use of its key. */
	if (!is_key_use(key_use_ops, n_ops, src, name))
		return;
	int64_t t = 0;
	const char *when = json_string_value(json_object_get(e, "eventTime"));
	if (when == NULL || !audit_parse_iso8601(when, &t))
		return;
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(e, "resources"), i, r)
	{
		audit_lastuse_note_past(json_string_value(json_object_get(r, "ARN")), name, t,
					json_string_value(json_object_get(e, "eventID")),
					json_string_value(json_object_get(e, "requestID")));
	}
}

const char *audit_event_username(json_t *e)
{
	json_t *u = json_object_get(e, "userIdentity");
	const char *type = json_string_value(json_object_get(u, "type"));
	const char *arn = json_string_value(json_object_get(u, "arn"));
	if (type == NULL)
		return NULL;
	if (strcmp(type, "Root") == 0)
		return "root";
	if (strcmp(type, "IAMUser") == 0)
		return json_string_value(json_object_get(u, "userName"));
	if (strcmp(type, "AssumedRole") == 0 && arn != NULL && strrchr(arn, '/') != NULL)
		return strrchr(arn, '/') + 1;
	return NULL;
}

k_status audit_intent(const struct audit_call_info *call)
{
	if (!audit_enabled() || call->event_name == NULL || !call->mutates)
		return K_OK;
	const char *src = call->event_source ? call->event_source : "kinko";
	char when[32];
	audit_iso8601(call->now, when);
	json_t *e =
		json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s}}", "eventTime", when, "eventSource",
			  src, "eventName", call->event_name, "awsRegion", call->region,
			  "requestID", call->request_id, "recipientAccountId", call->who.account,
			  "sourceIPAddress", call->source_ip, "userIdentity", "arn", call->who.arn);
	ENSURE(e != NULL, K_E_INTERNAL);
	k_status rc = write_event("intent", e);
	json_decref(e);
	return rc;
}

/*
 * Each thread formats its events in a buffer of its own that keeps its
 * size from call to call (a fresh buffer would grow from 64 bytes by
 * doubling on every call). Freed when the thread ends.
 */
static void line_free(void *p)
{
	struct kbuf *b = p;
	kbuf_release(b);
	free(b);
}

static void *line_make(void)
{
	struct kbuf *b = calloc(1, sizeof *b);
	if (b != NULL)
		kbuf_init(b, AUDIT_MAX_LINE);
	return b;
}

static struct kthread_slot line_slot = KTHREAD_SLOT_INIT(line_make, line_free);

static struct kbuf *line_buffer(void)
{
	struct kbuf *b = kthread_get(&line_slot);
	if (b != NULL)
		kbuf_clear(b); /* a redacted event: nothing to wipe */
	return b;
}

/* Per thread: the event's members packed for the index's side queue (ixqueue.c). */
static void *ix_make(void)
{
	return malloc(sizeof(struct audit_ixq_entry));
}

static struct kthread_slot ix_slot = KTHREAD_SLOT_INIT(ix_make, free);

/* The call's members for the index, or NULL (the indexer then parses the line). */
static const struct audit_ixq_entry *ix_entry(const struct audit_call_info *call, k_status rc,
					      const char *event_id,
					      const struct audit_resources *res)
{
	if (!audit_ixq_enabled())
		return NULL;
	struct audit_ixq_entry *e = kthread_get(&ix_slot);
	return e != NULL && audit_ixq_pack(call, rc, event_id, res, e) ? e : NULL;
}

k_status audit_call(const struct audit_call_info *call, json_t *in, json_t *out, k_status rc,
		    const char *err_msg)
{
	if (!audit_enabled())
		return K_OK;
	char event_id[37];
	struct audit_resources res;
	struct kbuf *line = line_buffer();
	ENSURE(line != NULL, K_E_INTERNAL);
	k_status wrc = audit_format_call(call, in, out, rc, err_msg, event_id, &res, line);
	if (k_ok(wrc))
		wrc = audit_writer_append_ix("event", (const char *)line->ptr, line->len,
					     ix_entry(call, rc, event_id, &res));
	if (k_ok(wrc))
		audit_ctindex_note((const char *)line->ptr,
				   line->len); /* LookupEvents on the other nodes */
	/* GetKeyLastUsage: a successful use of a key (the row says which), once its event is written. */
	if (k_ok(wrc) && k_ok(rc) && call->event_name != NULL && call->key_use) {
		for (size_t i = 0; i < res.n; i++)
			audit_lastuse_note(res.item[i].arn, call->event_name, call->now, event_id,
					   call->request_id);
	}
	return wrc;
}

k_status audit_emit_service_event(const char *event_source, const char *event_name,
				  const char *account, const char *region, const char *resource_arn,
				  const char *resource_type, json_t *details, k_status outcome)
{
	if (strcmp(event_name, "RotateKey") == 0)
		metrics_rotation(k_ok(outcome));
	if (!audit_enabled())
		return K_OK;
	char when[32], event_id[37], request_id[37];
	audit_iso8601(kclock_now(), when);
	new_event_id(event_id);
	new_event_id(request_id);
	json_t *e = json_object();
	ENSURE(e != NULL, K_E_INTERNAL);
	json_object_set_new(e, "eventVersion", json_string("1.08"));
	json_object_set_new(
		e, "userIdentity",
		json_pack("{s:s,s:s}", "accountId", account, "invokedBy", event_source));
	json_object_set_new(e, "eventTime", json_string(when));
	json_object_set_new(e, "eventSource", json_string(event_source));
	json_object_set_new(e, "eventName", json_string(event_name));
	json_object_set_new(e, "awsRegion", json_string(region));
	json_object_set_new(e, "sourceIPAddress", json_string(event_source));
	json_object_set_new(e, "userAgent", json_string(event_source));
	if (k_failed(outcome)) {
		json_object_set_new(e, "errorCode", json_string(k_status_name(outcome)));
		json_object_set_new(e, "errorMessage", json_string(k_status_message(outcome)));
	}
	json_object_set_new(e, "requestParameters", json_null());
	json_object_set_new(e, "responseElements", json_null());
	json_object_set_new(e, "requestID", json_string(request_id));
	json_object_set_new(e, "eventID", json_string(event_id));
	json_object_set_new(e, "readOnly", json_false());
	if (resource_arn != NULL)
		json_object_set_new(e, "resources",
				    json_pack("[{s:s,s:s,s:s}]", "accountId", account, "type",
					      resource_type ? resource_type : "AWS::KMS::Key",
					      "ARN", resource_arn));
	else
		json_object_set_new(e, "resources", json_null());
	json_object_set_new(e, "eventType", json_string("AwsServiceEvent"));
	json_object_set_new(e, "managementEvent", json_true());
	json_object_set_new(e, "recipientAccountId", json_string(account));
	if (details != NULL)
		json_object_set(e, "serviceEventDetails", details);
	json_object_set_new(e, "eventCategory", json_string("Management"));
	k_status rc = write_event("event", e);
	json_decref(e);
	return rc;
}
