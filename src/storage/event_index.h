/*
 * event_index.h — a local SQLite file that indexes the audit trail's
 * events for queries (CloudTrail LookupEvents) and keeps what start-up
 * would otherwise rebuild by reading the whole trail (the last use of
 * each key), with the checkpoint it covers.
 *
 * The trail stays the record of truth: this file is a copy of what the
 * trail says up to its checkpoint (the last record indexed, and where
 * that record ends in which log file). Every change of a batch and the
 * new checkpoint are written in one transaction, so after a crash the
 * file is exactly as of some checkpoint, and the caller re-reads the
 * trail from there. An event is found again by (file, offset, length) in
 * the trail; the index holds no event bodies.
 *
 * Threads: one writer (the audit indexer) and any number of readers; each
 * side has its own connection (WAL), and calls on one handle are
 * serialized by a mutex of its own.
 */
#ifndef KINKO_STORAGE_EVENT_INDEX_H
#define KINKO_STORAGE_EVENT_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/result.h"

struct event_index;

/* The longest log file name the index keeps (the audit folder's names are shorter). */
#define EVENT_INDEX_FILE_MAX 160

/* What the index covers: every record up to seq, which ends at off in file. */
struct event_index_pos {
	uint64_t seq; /* 0: nothing indexed yet */
	char file[EVENT_INDEX_FILE_MAX];
	uint64_t off;	/* the byte after the record's newline */
	int64_t oldest; /* the oldest event's time (seconds), 0 if none */
};

/* One event: where it is in the trail, and the members queries filter on. */
struct event_index_row {
	uint64_t seq;
	const char *file;
	uint64_t off;
	uint32_t len;
	int64_t t;		/* eventTime, seconds since the epoch */
	const char *ns;		/* "ACCOUNT:REGION" of the event */
	const char *name;	/* eventName */
	const char *source;	/* eventSource */
	const char *user;	/* CloudTrail's Username; "" if none */
	const char *event_id;	/* eventID */
	const char *access_key; /* userIdentity.accessKeyId; "" if none */
	bool read_only;
};

/*
 * Opens (creating if needed, mode 0600) the index at path. An index of an
 * unknown layout is emptied. The caller owns *out (event_index_close).
 * K_E_STORE_UNAVAILABLE if the file cannot be opened.
 */
K_MUST_CHECK k_status event_index_open(const char *path, struct event_index **out);
void event_index_close(struct event_index *ix);
/* Empties the index (a trail that no longer continues the checkpoint). */
K_MUST_CHECK k_status event_index_clear(struct event_index *ix);
/* The checkpoint; seq 0 and file "" for an empty index. */
K_MUST_CHECK k_status event_index_pos(struct event_index *ix, struct event_index_pos *out);

/*
 * A batch: begin, any number of add / add_resource / note_use, then
 * commit with the checkpoint it reaches (durable when it returns K_OK),
 * or rollback. Only the writer thread calls these.
 */
K_MUST_CHECK k_status event_index_begin(struct event_index *ix);
K_MUST_CHECK k_status event_index_add(struct event_index *ix, const struct event_index_row *r);
/* A resource of event seq: its type ("AWS::KMS::Key") and its ARN. */
K_MUST_CHECK k_status event_index_add_resource(struct event_index *ix, uint64_t seq, int64_t t,
					       const char *ns, const char *type, const char *arn);
/* A key's use; kept only if no later one is kept. */
K_MUST_CHECK k_status event_index_note_use(struct event_index *ix, const char *arn, const char *op,
					   int64_t t, const char *event_id, const char *request_id);
K_MUST_CHECK k_status event_index_commit(struct event_index *ix, const struct event_index_pos *pos);
void event_index_rollback(struct event_index *ix);

/* Calls cb for every kept key use (start-up loads them); cb returns false to stop. */
typedef bool (*event_index_use_cb)(void *arg, const char *arn, const char *op, int64_t t,
				   const char *event_id, const char *request_id);
K_MUST_CHECK k_status event_index_each_use(struct event_index *ix, event_index_use_cb cb,
					   void *arg);

/* The attribute a query filters on (LookupEvents' AttributeKey). */
enum event_index_attr {
	EVENT_INDEX_ALL = 0,
	EVENT_INDEX_EVENT_NAME,
	EVENT_INDEX_EVENT_SOURCE,
	EVENT_INDEX_USERNAME,
	EVENT_INDEX_EVENT_ID,
	EVENT_INDEX_ACCESS_KEY,
	EVENT_INDEX_READ_ONLY,	   /* value "true" or "false" */
	EVENT_INDEX_RESOURCE_TYPE, /* "AWS::KMS::Key" */
	EVENT_INDEX_RESOURCE_NAME, /* an ARN, or its part after the last '/' */
};

/*
 * A query: the events of ns with the attribute equal to value, whose time
 * is in [from, to], strictly before (before_t, before_seq) in the order
 * newest first (time, then seq, descending), at most limit rows.
 */
struct event_index_query {
	const char *ns;
	enum event_index_attr attr;
	const char *value;
	int64_t from, to;
	bool after_set; /* false: from the newest */
	int64_t before_t;
	uint64_t before_seq;
	size_t limit;
};

/* One row found; return false to stop. */
typedef bool (*event_index_hit_cb)(void *arg, uint64_t seq, int64_t t, const char *file,
				   uint64_t off, uint32_t len);
/* Runs q, newest first; each row found goes to cb. */
K_MUST_CHECK k_status event_index_query(struct event_index *ix, const struct event_index_query *q,
					event_index_hit_cb cb, void *arg);

#endif
