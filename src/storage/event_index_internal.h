/*
 * event_index_internal.h — shared by event_index.c (the writer, the
 * layout) and event_index_query.c (the readers); not a public contract.
 */
#ifndef KINKO_STORAGE_EVENT_INDEX_INTERNAL_H
#define KINKO_STORAGE_EVENT_INDEX_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

/* Interned strings whose ids the writer keeps in memory (direct-mapped). */
#define INTERN_SLOTS 4096
/* Key uses a batch keeps in memory until its commit (direct-mapped; a clash writes the older). */
#define USE_SLOTS 1024
#define USE_ARN_MAX 320
#define USE_STR_MAX 64
/*
 * The attribute code of an event's operation row in attr: its value is
 * an id of op (name, source, read-only), so one row answers lookups by
 * EventName, EventSource and ReadOnly.
 */
#define EVENT_INDEX_ATTR_OP 100

struct intern_slot {
	char *s; /* NULL: empty */
	int64_t id;
};

struct use_slot {
	bool set;
	int64_t t;
	char arn[USE_ARN_MAX], op[USE_STR_MAX], eid[USE_STR_MAX], rid[USE_STR_MAX];
};

struct event_index {
	pthread_mutex_t wmu, rmu;
	sqlite3 *w, *r;
	/* ins_attr2: two rows of one event in one statement */
	sqlite3_stmt *ins_ev, *ins_attr, *ins_attr2, *ins_use, *set_pos;
	sqlite3_stmt *get_str, *ins_str, *get_op, *ins_op;
	struct intern_slot *intern; /* INTERN_SLOTS */
	struct use_slot *uses;	    /* USE_SLOTS */
};

/* An event id's value in attr: 63 bits of its hash (the reader checks the event). */
int64_t event_index_eid_value(const char *eid);

#endif
