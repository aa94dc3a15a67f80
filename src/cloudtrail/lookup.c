/*
 * lookup.c — CloudTrail LookupEvents
 * (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html)
 * over the audit log folder.
 *
 * AWS's rules kept here: "Currently the list can contain only one item"
 * (LookupAttributes); MaxResults "Possible values are 1 through 50. The
 * default is 50"; events come newest first; "If the time range is
 * invalid (StartTime after EndTime) ... InvalidTimeRangeException".
 * Each result carries the whole event as the CloudTrailEvent string.
 * Only the caller's account and signed region are searched.
 *
 * In a cluster (audit_ctindex_enabled(): a shared store), the answer also
 * covers the other nodes' events, which each node indexes into the store
 * in the background (audit/ctindex.c; they appear within about a second).
 * The events of all nodes are then ordered newest first by (eventTime,
 * node id, then the seq of this node's trail or the event id), and
 * NextToken ("kinko-m...") names the last event returned in that order.
 */
#include "cloudtrail/cloudtrail.h"
#include "cloudtrail/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "cluster/cluster.h"
#include "kms/authz.h"
#include "core/json.h"
#include "core/banned.h"

/*
 * The row (req/req.h): LookupEvents acts on no resource; the caller's
 * identity policies must allow cloudtrail:LookupEvents on "*". "The rate
 * of lookup requests is limited to two per second, per account, per
 * Region" (API_LookupEvents).
 */
static const struct api_operation ct_ops[] = {
	{.name = "LookupEvents",
	 .handler = cloudtrail_op_lookup_events,
	 .action = "cloudtrail:LookupEvents",
	 .resource = API_RES_NONE,
	 .member = NULL,
	 .state = API_STATE_NA,
	 .quota = {NULL, 2},
	 .mutates = false,
	 .key_use = false,
	 .max_body = 0},
};

/* Identity policies on Resource "*", as for any operation on no resource. */
static K_MUST_CHECK k_status ct_authorize(struct api_ctx *c, json_t *in)
{
	(void)in;
	return c->op->resource == API_RES_NONE ? authz_identity(c, c->op->action, "*")
					       : K_E_INTERNAL;
}

static const struct api_service ct_service = {
	.target_prefix = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.",
	.signing_name = "cloudtrail",
	.event_source = "cloudtrail.amazonaws.com",
	.ops = ct_ops,
	.n_ops = sizeof ct_ops / sizeof ct_ops[0],
	.authorize = ct_authorize,
	.resources = API_RES_BIT(API_RES_NONE),
};

const struct api_service *cloudtrail_service_table(void)
{
	return &ct_service;
}

static const char *const attribute_keys[] = {"EventId",	    "EventName",    "ReadOnly",
					     "Username",    "ResourceType", "ResourceName",
					     "EventSource", "AccessKeyId",  NULL};

static bool eq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static bool attr_matches(const struct query *q, json_t *e)
{
	if (q->attr == NULL)
		return true;
	const char *a = q->attr, *v = q->value;
	if (strcmp(a, "EventId") == 0)
		return eq(json_string_value(json_object_get(e, "eventID")), v);
	if (strcmp(a, "EventName") == 0)
		return eq(json_string_value(json_object_get(e, "eventName")), v);
	if (strcmp(a, "EventSource") == 0)
		return eq(json_string_value(json_object_get(e, "eventSource")), v);
	if (strcmp(a, "ReadOnly") == 0)
		return eq(json_is_true(json_object_get(e, "readOnly")) ? "true" : "false", v);
	if (strcmp(a, "Username") == 0)
		return eq(audit_event_username(e), v);
	if (strcmp(a, "AccessKeyId") == 0)
		return eq(json_string_value(json_object_get(json_object_get(e, "userIdentity"),
							    "accessKeyId")),
			  v);
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(e, "resources"), i, r)
	{
		const char *arn = json_string_value(json_object_get(r, "ARN"));
		if (strcmp(a, "ResourceType") == 0 &&
		    eq(json_string_value(json_object_get(r, "type")), v))
			return true;
		if (strcmp(a, "ResourceName") == 0 && arn != NULL &&
		    (strcmp(arn, v) == 0 ||
		     (strrchr(arn, '/') && strcmp(strrchr(arn, '/') + 1, v) == 0)))
			return true;
	}
	return false;
}

/* -1, 0, 1 as a comes before, with, after b in the merged order (newest first). */
static int mcmp(int64_t at, const char *an, const char *atie, int64_t bt, const char *bn,
		const char *btie)
{
	if (at != bt)
		return at > bt ? -1 : 1;
	int c = strcmp(an, bn);
	if (c == 0)
		c = strcmp(atie, btie);
	return c > 0 ? -1 : c < 0 ? 1 : 0;
}

static int match_order(const void *a, const void *b)
{
	const struct match *x = a, *y = b;
	return mcmp(x->t, x->node, x->tie, y->t, y->node, y->tie);
}

/* Adds a match that passed every filter; false when out of memory. */
static bool add_match(struct query *q, uint64_t seq, json_t *e, int64_t t, const char *node,
		      const char *tie)
{
	if (q->merged && q->after.set &&
	    mcmp(t, node, tie, q->after.t, q->after.node, q->after.tie) <= 0)
		return true; /* on an earlier page */
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		struct match *nm = realloc(q->m, cap * sizeof *nm);
		if (nm == NULL) {
			q->oom = true;
			return false;
		}
		q->m = nm;
		q->cap = cap;
	}
	struct match *m = &q->m[q->n++];
	m->seq = seq;
	m->event = json_incref(e);
	m->t = t;
	snprintf(m->node, sizeof m->node, "%s", node);
	snprintf(m->tie, sizeof m->tie, "%s", tie);
	return true;
}

/* Whether event e passes the query's time range and attribute; its time in *t. */
static bool passes(const struct query *q, json_t *e, int64_t *t)
{
	const char *when = json_string_value(json_object_get(e, "eventTime"));
	if (when == NULL || !audit_parse_iso8601(when, t))
		return false;
	if ((q->has_start && (double)*t < q->start) || (q->has_end && (double)*t > q->end))
		return false;
	return attr_matches(q, e);
}

/* Another node's indexed event (audit_ctindex_list_others). */
static bool collect_other(void *arg, const char *node, const char *event_id, json_t *e)
{
	struct query *q = arg;
	int64_t t;
	if (!eq(json_string_value(json_object_get(e, "recipientAccountId")), q->account) ||
	    !eq(json_string_value(json_object_get(e, "awsRegion")), q->region) || !passes(q, e, &t))
		return true;
	return add_match(q, 0, e, t, node, event_id);
}

/* This node's events from the trail (merged mode). */
static bool collect(void *arg, uint64_t seq, const char *type, json_t *e, const char *file)
{
	(void)file;
	struct query *q = arg;
	int64_t t;
	char tie[24];
	if (strcmp(type, "event") != 0 ||
	    !eq(json_string_value(json_object_get(e, "recipientAccountId")), q->account) ||
	    !eq(json_string_value(json_object_get(e, "awsRegion")), q->region) || !passes(q, e, &t))
		return true;
	snprintf(tie, sizeof tie, "%020" PRIu64, seq);
	return add_match(q, seq, e, t, cluster_node_id(), tie);
}

static K_MUST_CHECK k_status time_member(struct api_ctx *c, json_t *in, const char *name, bool *has,
					 double *out)
{
	json_t *v = json_object_get(in, name);
	*has = false;
	if (v == NULL || json_is_null(v))
		return K_OK;
	ENSURE(json_is_number(v),
	       api_fail(c, K_E_SERIALIZATION, "Expected a timestamp (epoch seconds) for %s", name));
	*has = true;
	*out = json_number_value(v);
	return K_OK;
}

json_t *ct_render_event(json_t *e)
{
	json_t *o = json_object();
	int64_t t = 0;
	const char *when = json_string_value(json_object_get(e, "eventTime"));
	if (when != NULL)
		(void)audit_parse_iso8601(when, &t);
	json_object_set(o, "EventId", json_object_get(e, "eventID"));
	json_object_set(o, "EventName", json_object_get(e, "eventName"));
	json_object_set_new(
		o, "ReadOnly",
		json_string(json_is_true(json_object_get(e, "readOnly")) ? "true" : "false"));
	json_t *ak = json_object_get(json_object_get(e, "userIdentity"), "accessKeyId");
	if (ak != NULL)
		json_object_set(o, "AccessKeyId", ak);
	json_object_set_new(o, "EventTime", json_integer((json_int_t)t));
	json_object_set(o, "EventSource", json_object_get(e, "eventSource"));
	const char *user = audit_event_username(e);
	if (user != NULL)
		json_object_set_new(o, "Username", json_string(user));
	json_t *res = json_array();
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(e, "resources"), i, r)
	{
		json_array_append_new(res, json_pack("{s:O,s:O}", "ResourceType",
						     json_object_get(r, "type"), "ResourceName",
						     json_object_get(r, "ARN")));
	}
	json_object_set_new(o, "Resources", res);
	char *s = json_dumps(e, JSON_COMPACT);
	if (s != NULL) {
		json_object_set_new(o, "CloudTrailEvent", json_string(s));
		kjson_free(s);
	}
	return o;
}

/* "kinko-mTIME|NODE|TIE": the last event of the previous page in the merged order. */
static K_MUST_CHECK k_status parse_merged_token(struct api_ctx *c, const char *token,
						struct mpos *p)
{
	char *end = NULL;
	ENSURE(strncmp(token, "kinko-m", 7) == 0,
	       api_fail(c, K_E_CT_INVALID_NEXT_TOKEN, "Invalid NextToken."));
	long long t = strtoll(token + 7, &end, 10);
	const char *bar = end != NULL && *end == '|' ? strchr(end + 1, '|') : NULL;
	ENSURE(bar != NULL && t >= 0 && (size_t)(bar - end - 1) < sizeof p->node &&
		       strlen(bar + 1) < sizeof p->tie,
	       api_fail(c, K_E_CT_INVALID_NEXT_TOKEN, "Invalid NextToken."));
	p->set = true;
	p->t = t;
	snprintf(p->node, sizeof p->node, "%.*s", (int)(bar - end - 1), end + 1);
	snprintf(p->tie, sizeof p->tie, "%s", bar + 1);
	return K_OK;
}

/* The merged answer: every node's matches, newest first, max of them. */
static void render_merged(struct query *q, json_t *events, json_t *out, json_int_t max)
{
	if (q->n > 1)
		qsort(q->m, q->n, sizeof *q->m, match_order);
	for (size_t i = 0; i < q->n; i++) {
		if ((json_int_t)i == max) {
			const struct match *last = &q->m[i - 1];
			char next[200];
			snprintf(next, sizeof next, "kinko-m%lld|%s|%s", (long long)last->t,
				 last->node, last->tie);
			json_object_set_new(out, "NextToken", json_string(next));
			break;
		}
		json_array_append_new(events, ct_render_event(q->m[i].event));
	}
}

/* LookupAttributes: at most one, whose key and value fill q. */
static K_MUST_CHECK k_status read_attributes(struct api_ctx *c, json_t *in, struct query *q)
{
	json_t *attrs = json_object_get(in, "LookupAttributes");
	if (attrs == NULL || json_is_null(attrs))
		return K_OK;
	ENSURE(json_is_array(attrs),
	       api_fail(c, K_E_SERIALIZATION, "Expected a list for LookupAttributes"));
	ENSURE(json_array_size(attrs) <= 1,
	       api_fail(c, K_E_CT_INVALID_LOOKUP_ATTRIBUTES,
			"You cannot specify more than one lookup attribute."));
	if (json_array_size(attrs) == 1) {
		json_t *a = json_array_get(attrs, 0);
		ENSURE(json_is_object(a),
		       api_fail(c, K_E_SERIALIZATION, "Expected a structure in LookupAttributes"));
		GUARD(api_enum(c, a, "AttributeKey", true, attribute_keys, &q->attr));
		GUARD(api_string(c, a, "AttributeValue", true, 1, 2000, &q->value));
	}
	return K_OK;
}

/* The time range, MaxResults, EventCategory and NextToken. */
static K_MUST_CHECK k_status read_range(struct api_ctx *c, json_t *in, struct query *q,
					json_int_t *max, const char **category)
{
	GUARD(time_member(c, in, "StartTime", &q->has_start, &q->start));
	GUARD(time_member(c, in, "EndTime", &q->has_end, &q->end));
	ENSURE(!(q->has_start && q->has_end && q->start > q->end),
	       api_fail(c, K_E_CT_INVALID_TIME_RANGE,
			"Start time must be earlier than or equal to end time."));
	json_t *mr = json_object_get(in, "MaxResults");
	*max = 50;
	if (mr != NULL && !json_is_null(mr)) {
		ENSURE(json_is_integer(mr) && json_integer_value(mr) >= 1 &&
			       json_integer_value(mr) <= 50,
		       api_fail(c, K_E_CT_INVALID_MAX_RESULTS,
				"MaxResults must be between 1 and 50."));
		*max = json_integer_value(mr);
	}
	static const char *const categories[] = {"insight", NULL};
	GUARD(api_enum(c, in, "EventCategory", false, categories, category));
	const char *token;
	GUARD(api_string(c, in, "NextToken", false, 1, 200, &token));
	q->merged = audit_ctindex_enabled();
	if (token != NULL && q->merged)
		return parse_merged_token(c, token, &q->after);
	q->token = token;
	return K_OK;
}

k_status cloudtrail_op_lookup_events(struct api_ctx *c, json_t *in, json_t *out)
{
	struct query q;
	memset(&q, 0, sizeof q);
	q.account = c->principal.account;
	q.region = c->region;
	json_int_t max = 50;
	const char *category = NULL;
	GUARD(read_attributes(c, in, &q));
	GUARD(read_range(c, in, &q, &max, &category));
	json_t *events = json_array();
	ENSURE(events != NULL, K_E_INTERNAL);
	json_object_set_new(out, "Events", events);
	if (category != NULL || !audit_enabled())
		return K_OK; /* no Insights events here; no log when audit is off */
	if (!q.merged)
		return ct_lookup_indexed(c, &q, events, out, max);
	audit_drain();
	k_status rc = audit_scan(audit_dir(), collect, &q);
	if (k_ok(rc)) {
		char ns[64];
		snprintf(ns, sizeof ns, "%s:%s", q.account, q.region);
		rc = audit_ctindex_list_others(ns, q.has_start ? (int64_t)q.start : 0,
					       q.has_end ? (int64_t)q.end : -1, collect_other, &q);
	}
	if (k_ok(rc) && q.oom)
		rc = K_E_INTERNAL;
	if (k_ok(rc))
		render_merged(&q, events, out, max);
	for (size_t i = 0; i < q.n; i++)
		json_decref(q.m[i].event);
	free(q.m);
	return rc;
}
