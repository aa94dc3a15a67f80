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

/*
 * Interned strings whose ids the writer keeps in memory (direct-mapped):
 * 262,144 slots, so that the ARNs of 100,000 keys mostly stay (4 MiB of
 * slots, plus the strings cached).
 */
#define INTERN_SLOTS (1u << 18)
/*
 * Key uses a batch keeps in memory until its commit (direct-mapped; a
 * clash writes the older): as many as a batch of the indexer's has
 * records, so that a batch over many keys keeps most uses until the
 * commit, which writes them in the order of lastuse's key.
 */
#define USE_SLOTS 16384
/*
 * The (event, value) pairs a batch keeps in memory before it writes them
 * as blocks sorted by blk's key: pairs of one value (a key's ARN, an
 * operation) and second become one block, each leaf page read and
 * dirtied once a batch instead of once a pair. A batch with more pairs
 * writes them as they fill.
 */
#define ATTR_ROWS_MAX 131072
/* The seqs one block of blk holds at most (its row stays within a page). */
#define BLOCK_SEQS_MAX 256
#define USE_ARN_MAX 320
#define USE_STR_MAX 64
/*
 * The attribute code of an event's operation in blk: its value is an id
 * of op (name, source, read-only), so one block answers lookups by
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

/* One (event, value) pair, kept until the batch writes its blocks in key order. */
struct attr_row {
	int64_t ns, a, v, t, seq;
};

struct event_index {
	pthread_mutex_t wmu, rmu;
	sqlite3 *w, *r;
	sqlite3_stmt *ins_ev, *ins_blk, *ins_use, *set_pos;
	sqlite3_stmt *get_str, *ins_str, *get_op, *ins_op;
	struct intern_slot *intern; /* INTERN_SLOTS */
	struct use_slot *uses;	    /* USE_SLOTS */
	struct attr_row *rows;	    /* ATTR_ROWS_MAX; n_rows of them held */
	size_t n_rows;
};

/* An event id's value in blk (event_index.c says how; the reader checks the event). */
int64_t event_index_eid_value(const char *eid);

#endif
