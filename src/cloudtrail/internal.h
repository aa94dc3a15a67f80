/*
 * internal.h — what lookup.c and lookup_index.c share; not a public contract.
 */
#ifndef KINKO_CLOUDTRAIL_INTERNAL_H
#define KINKO_CLOUDTRAIL_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "req/req.h"

struct match {
	uint64_t seq;
	json_t *event;
	/* The cluster-wide order (merged mode): time, node, then seq or event id. */
	int64_t t;
	char node[72];
	char tie[40];
};

/* The position a merged NextToken names. */
struct mpos {
	bool set;
	int64_t t;
	char node[72];
	char tie[40];
};

/* One LookupEvents call's query, as read from the request. */
struct query {
	const char *account, *region;
	const char *attr, *value; /* the LookupAttribute (attr NULL: none) */
	double start, end;
	bool has_start, has_end;
	const char *token; /* this node's NextToken (not merged); NULL: the first page */
	bool merged;	   /* the other nodes' events too (lookup.c's top) */
	struct mpos after; /* merged NextToken: only events after it in the order */
	struct match *m;
	size_t n, cap;
	bool oom;
};

/* The LookupEvents result of one event (its CloudTrailEvent and the members beside it). */
json_t *ct_render_event(json_t *e);

/*
 * The answer of a node without a shared store, from the event index
 * (lookup_index.c): at most max events of q, newest first, appended to
 * events, and NextToken in out when there may be more.
 */
K_MUST_CHECK k_status ct_lookup_indexed(struct api_ctx *c, const struct query *q, json_t *events,
					json_t *out, json_int_t max);

#endif
