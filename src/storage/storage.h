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
 * full, read-only, locked, I/O error; nothing was applied; retry later).
 * All functions are safe to call from several threads at once.
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

struct storage_op {
	enum storage_op_kind op;
	const char *kind;
	const char *ns;
	const char *id;
	struct kslice doc;     /* PUT only */
	int64_t expect;        /* STORAGE_ANY, STORAGE_ABSENT or the current version */
};

/* Called once per listed record; return non-K_OK to stop (that code is returned). */
typedef k_status (*storage_list_cb)(void *arg, const char *id, struct kslice doc, int64_t version);

struct storage_vtbl {
	/* Reads one record into doc (appended) and its version. */
	k_status (*get)(struct storage *s, const char *kind, const char *ns, const char *id,
			struct kbuf *doc, int64_t *version);
	/* Applies all ops atomically and durably, or none. */
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
	/* Runs the backend's integrity check. K_OK if the store is sound. */
	k_status (*check)(struct storage *s);
	void (*close)(struct storage *s);
};

struct storage {
	const struct storage_vtbl *vt;
};

/*
 * Opens (creating if needed) the SQLite store in dir/kinko.db, with WAL
 * and synchronous=FULL, and runs the schema migrations. *out on success.
 */
K_MUST_CHECK k_status storage_sqlite_open(const char *dir, struct storage **out);

/* Within a list callback on a ns==NULL listing: the current record's ns. */
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
static inline void storage_close(struct storage *s)
{
	if (s != NULL)
		s->vt->close(s);
}

#endif
