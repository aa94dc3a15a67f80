/*
 * lookup_index.c — LookupEvents on a node without a shared store, from
 * the audit trail's event index (audit/indexer.c, storage/event_index.h).
 *
 * A call's work is bounded whatever the trail's length: it first indexes
 * at most LOOKUP_SYNC_MAX records written since the index's checkpoint
 * (the background indexer keeps that small), then reads at most
 * MaxResults + 1 rows of one range of the index, and reads from the trail
 * only the events it returns. An indexed event whose bytes are gone from
 * the trail (a pruned file) is skipped; when a page ends on skipped rows
 * the answer still carries a NextToken, as AWS does when a lookup stops
 * early. NextToken "kinko-iTIME.SEQ" names the last row examined: the
 * next page starts just after it in the order newest first (time, then
 * the record's seq).
 */
#include "cloudtrail/internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "core/banned.h"

/* Records a lookup may index itself before it queries (the indexer thread does the rest). */
#define LOOKUP_SYNC_MAX 20000

static const struct {
	const char *key;
	enum event_index_attr attr;
} attrs[] = {
	{"EventId", EVENT_INDEX_EVENT_ID},	     {"EventName", EVENT_INDEX_EVENT_NAME},
	{"ReadOnly", EVENT_INDEX_READ_ONLY},	     {"Username", EVENT_INDEX_USERNAME},
	{"ResourceType", EVENT_INDEX_RESOURCE_TYPE}, {"ResourceName", EVENT_INDEX_RESOURCE_NAME},
	{"EventSource", EVENT_INDEX_EVENT_SOURCE},   {"AccessKeyId", EVENT_INDEX_ACCESS_KEY},
};

struct page {
	json_t *events;
	const char *event_id; /* an EventId lookup: the index matched a hash of it, checked here */
	json_int_t max, taken;
	size_t examined;
	int64_t last_t; /* the last row examined */
	uint64_t last_seq;
	bool more; /* a row past the page exists */
};

static bool take(void *arg, uint64_t seq, int64_t t, const char *file, uint64_t off, uint32_t len)
{
	struct page *p = arg;
	if (p->taken == p->max) {
		p->more = true;
		return false;
	}
	p->examined++;
	p->last_t = t;
	p->last_seq = seq;
	json_t *rec = NULL;
	if (file == NULL || k_failed(audit_read_event(file, off, len, seq, &rec)))
		return true; /* no longer in the trail */
	json_t *ev = json_object_get(rec, "event");
	const char *eid = json_string_value(json_object_get(ev, "eventID"));
	if (p->event_id != NULL && (eid == NULL || strcmp(eid, p->event_id) != 0)) {
		json_decref(rec);
		return true; /* another event whose id has the same hash */
	}
	json_array_append_new(p->events, ct_render_event(json_object_get(rec, "event")));
	json_decref(rec);
	p->taken++;
	return true;
}

/* "kinko-iTIME.SEQ" into the query's start. */
static K_MUST_CHECK k_status parse_token(struct api_ctx *c, const char *token,
					 struct event_index_query *iq)
{
	char *end = NULL;
	ENSURE(strncmp(token, "kinko-i", 7) == 0,
	       api_fail(c, K_E_CT_INVALID_NEXT_TOKEN, "Invalid NextToken."));
	long long t = strtoll(token + 7, &end, 10);
	ENSURE(end != NULL && *end == '.' && t >= 0,
	       api_fail(c, K_E_CT_INVALID_NEXT_TOKEN, "Invalid NextToken."));
	const char *s = end + 1;
	unsigned long long seq = strtoull(s, &end, 10);
	ENSURE(end != s && *end == 0 && seq > 0,
	       api_fail(c, K_E_CT_INVALID_NEXT_TOKEN, "Invalid NextToken."));
	iq->after_set = true;
	iq->before_t = t;
	iq->before_seq = seq;
	return K_OK;
}

k_status ct_lookup_indexed(struct api_ctx *c, const struct query *q, json_t *events, json_t *out,
			   json_int_t max)
{
	char ns[96];
	snprintf(ns, sizeof ns, "%s:%s", q->account, q->region);
	struct event_index_query iq = {.ns = ns,
				       .attr = EVENT_INDEX_ALL,
				       .value = "",
				       .from = q->has_start ? (int64_t)ceil(q->start) : 0,
				       .to = q->has_end ? (int64_t)floor(q->end) : INT64_MAX,
				       .limit = (size_t)max + 1};
	for (size_t i = 0; q->attr != NULL && i < sizeof attrs / sizeof attrs[0]; i++) {
		if (strcmp(attrs[i].key, q->attr) == 0) {
			iq.attr = attrs[i].attr;
			iq.value = q->value;
		}
	}
	if (q->token != NULL)
		GUARD(parse_token(c, q->token, &iq));
	audit_drain();
	k_status rc = audit_index_sync(LOOKUP_SYNC_MAX);
	ENSURE(k_ok(rc), rc);
	struct page p = {.events = events,
			 .max = max,
			 .event_id = iq.attr == EVENT_INDEX_EVENT_ID ? iq.value : NULL};
	GUARD(audit_index_query(&iq, take, &p));
	if (p.more) {
		char next[64];
		snprintf(next, sizeof next, "kinko-i%lld.%" PRIu64, (long long)p.last_t,
			 p.last_seq);
		json_object_set_new(out, "NextToken", json_string(next));
	}
	return K_OK;
}
