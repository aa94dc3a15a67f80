/*
 * storage.h — the durable store, behind a small vtable.
 *
 * The store is a set of JSON documents addressed by (kind, ns, id):
 *   kind  what the record is: "key", "alias", "grant", "secret", ...
 *   ns    its namespace, "ACCOUNT:REGION" for regional resources
 *   id    unique within (kind, ns); listing returns ids in byte order
 * Each record carries a version (1 on creation, +1 on each put) for
 * optimistic concurrency. A backend (SQLite now, PostgreSQL later) only
 * stores bytes; all KMS logic lives above it. Documents are opaque here.
 *
 * Durability: apply() returns K_OK only once the change is durable (fsync'd),
 * so an acknowledged write survives kill -9 and power loss.
 *
 * Errors: K_E_NOT_FOUND (get of a missing record), K_E_CONFLICT (a version
 * precondition failed; nothing was applied), K_E_STORE_UNAVAILABLE (disk
 * full, read-only, locked, I/O error; nothing was applied; retry later),
 * K_E_VALIDATION (a NULL or oversized argument, see the limits below;
 * nothing was applied).
 * All functions are safe to call from several threads at once, except
 * close, which must not run while any other call on the store is in flight.
 *
 * Limits: kind and id are 1..STORAGE_MAX_NAME bytes, ns 0..STORAGE_MAX_NAME
 * bytes (NUL-terminated, no embedded NUL); a document is at most
 * STORAGE_MAX_DOC bytes.
 */
#ifndef KINKO_STORAGE_STORAGE_H
#define KINKO_STORAGE_STORAGE_H

#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"

struct storage;

enum storage_op_kind { STORAGE_PUT = 1, STORAGE_DEL = 2 };

/* Version preconditions for storage_op.expect. */
#define STORAGE_ANY (-1)       /* no precondition */
#define STORAGE_ABSENT 0       /* the record must not exist (PUT creates) */

#define STORAGE_MAX_NAME 512u               /* bytes in kind, ns or id */
#define STORAGE_MAX_DOC (1024u * 1024u)     /* bytes in one document */

struct storage_op {
	enum storage_op_kind op;
	const char *kind;
	const char *ns;
	const char *id;
	struct kslice doc;     /* PUT only */
	int64_t expect;        /* STORAGE_ANY, STORAGE_ABSENT or the current version */
};

/*
 * Called once per listed record; return non-K_OK to stop (that code is returned).
 * id and doc point into the backend's row and are valid only until the
 * callback returns: copy what you keep. The callback may call get, apply and
 * list on the same store (they run on another connection, and do not see a
 * snapshot shared with the listing).
 */
typedef k_status (*storage_list_cb)(void *arg, const char *id, struct kslice doc, int64_t version);

struct storage_vtbl {
	/*
	 * Reads one record into doc (appended) and its version. Either may be
	 * NULL when not wanted. K_E_VALIDATION, leaving doc unchanged, if the
	 * document does not fit in doc's max.
	 */
	k_status (*get)(struct storage *s, const char *kind, const char *ns, const char *id,
			struct kbuf *doc, int64_t *version);
	/*
	 * Applies all ops atomically and durably, or none. Ops run in order, so
	 * a later op on the same record sees the version an earlier one left.
	 * PUT: with STORAGE_ABSENT the record must not exist; with a version
	 * n > 0 the record must exist with version n (K_E_CONFLICT otherwise).
	 * DEL: with n > 0, K_E_NOT_FOUND if the record is missing and
	 * K_E_CONFLICT if its version is not n; with STORAGE_ANY deleting a
	 * missing record succeeds. n == 0 ops is a no-op.
	 */
	k_status (*apply)(struct storage *s, const struct storage_op *ops, size_t n);
	/*
	 * Lists records of (kind, ns) with id > after (after NULL or "": from
	 * the start) and, when prefix is non-NULL, id starting with prefix, in
	 * id order, at most limit of them (0 = no limit).
	 * ns NULL lists every namespace (ordered by ns, then id; "after" then
	 * applies to ids within each ns and should be NULL).
	 * The callback gets the record's ns through storage_list_ns() if it needs it.
	 */
	k_status (*list)(struct storage *s, const char *kind, const char *ns, const char *prefix,
			 const char *after, size_t limit, storage_list_cb cb, void *arg);
	/*
	 * Runs the backend's integrity check. K_OK if the store is sound,
	 * K_E_INTERNAL if it is damaged, K_E_STORE_UNAVAILABLE if the check
	 * could not run.
	 */
	k_status (*check)(struct storage *s);
	void (*close)(struct storage *s);
	/*
	 * Deletes every record, of every kind, whose ns starts with ns_prefix
	 * (non-empty), atomically and durably; K_OK also when none matched.
	 * For the test-mode reset ("ACCOUNT:" empties one account).
	 */
	k_status (*purge)(struct storage *s, const char *ns_prefix);
	/*
	 * Makes deleted documents unrecoverable from the store's files: the
	 * backend's logs of older page images are folded into the database
	 * (where deleted content is overwritten) and emptied. Call after
	 * deleting key material. K_E_STORE_UNAVAILABLE if a reader or writer
	 * kept it from completing (retry later).
	 */
	k_status (*scrub)(struct storage *s);
};

struct storage {
	const struct storage_vtbl *vt;
};

/*
 * Opens (creating if needed) the SQLite store in dir/kinko.db, with WAL
 * and synchronous=FULL, and runs the schema migrations. *out on success.
 * dir itself is created with mode 0700 if missing (its parent must exist);
 * the database file is created, or narrowed, to mode 0600.
 * K_E_STORE_UNAVAILABLE if the folder or file cannot be created or opened,
 * K_E_INTERNAL if the database was written by a newer schema.
 * The caller owns *out and frees it with storage_close().
 */
K_MUST_CHECK k_status storage_sqlite_open(const char *dir, struct storage **out);

/*
 * How long a SQLite store waits for a lock held by another writer before
 * failing with K_E_STORE_UNAVAILABLE (default 5000 ms). Applies to the
 * calls that start after it. K_E_VALIDATION if s is not a SQLite store or
 * ms is negative. Meant for tests and tuning.
 */
K_MUST_CHECK k_status storage_sqlite_set_busy_timeout_ms(struct storage *s, int ms);

/*
 * Within a list callback: the current record's ns (any listing; the point
 * is the ns==NULL one). NULL outside a callback. Valid until the callback
 * returns.
 */
const char *storage_list_ns(void);

static inline K_MUST_CHECK k_status storage_get(struct storage *s, const char *kind, const char *ns,
						const char *id, struct kbuf *doc, int64_t *version)
{
	return s->vt->get(s, kind, ns, id, doc, version);
}
static inline K_MUST_CHECK k_status storage_apply(struct storage *s, const struct storage_op *ops, size_t n)
{
	return s->vt->apply(s, ops, n);
}
static inline K_MUST_CHECK k_status storage_list(struct storage *s, const char *kind, const char *ns,
						 const char *prefix, const char *after, size_t limit,
						 storage_list_cb cb, void *arg)
{
	return s->vt->list(s, kind, ns, prefix, after, limit, cb, arg);
}
static inline K_MUST_CHECK k_status storage_check(struct storage *s)
{
	return s->vt->check(s);
}
static inline K_MUST_CHECK k_status storage_purge(struct storage *s, const char *ns_prefix)
{
	return s->vt->purge != NULL ? s->vt->purge(s, ns_prefix) : K_E_UNSUPPORTED;
}
static inline K_MUST_CHECK k_status storage_scrub(struct storage *s)
{
	return s->vt->scrub != NULL ? s->vt->scrub(s) : K_OK;
}
static inline void storage_close(struct storage *s)
{
	if (s != NULL)
		s->vt->close(s);
}

#endif
