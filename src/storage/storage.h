/*
 * storage.h — the durable store, behind a small vtable.
 *
 * The store is a set of JSON documents addressed by (kind, ns, id):
 *   kind  what the record is: "key", "alias", "grant", "secret", ...
 *   ns    its namespace, "ACCOUNT:REGION" for regional resources
 *   id    unique within (kind, ns); listing returns ids in byte order
 * Each record carries a version (1 on creation, +1 on each put) for
 * optimistic concurrency. A backend (SQLite, PostgreSQL) only
 * stores bytes; all KMS logic lives above it. Documents are opaque here.
 * storage_open(URL) picks the backend; every committed write is announced
 * on the store's change feed (below) so that caches can drop their copies.
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

enum storage_op_kind {
	STORAGE_PUT = 1,
	STORAGE_DEL = 2
};

/* Version preconditions for storage_op.expect. */
#define STORAGE_ANY (-1) /* no precondition */
#define STORAGE_ABSENT 0 /* the record must not exist (PUT creates) */

#define STORAGE_MAX_NAME 512u		/* bytes in kind, ns or id */
#define STORAGE_MAX_DOC (1024u * 1024u) /* bytes in one document */

struct storage_op {
	enum storage_op_kind op;
	const char *kind;
	const char *ns;
	const char *id;
	struct kslice doc; /* PUT only */
	int64_t expect;	   /* STORAGE_ANY, STORAGE_ABSENT or the current version */
};

/*
 * Called once per listed record; return non-K_OK to stop (that code is returned).
 * ns is the record's namespace (the point is the every-namespace listing;
 * in a one-namespace listing it equals the ns asked for). ns, id and doc
 * point into the backend's row and are valid only until the callback
 * returns: copy what you keep. The callback may call get, apply and list
 * on the same store (they run on another connection, and do not see a
 * snapshot shared with the listing).
 */
typedef K_MUST_CHECK k_status (*storage_list_cb)(void *arg, const char *ns, const char *id,
						 struct kslice doc, int64_t version);

/*
 * The change feed. Every committed write is announced to the feed's
 * subscribers, so that a cache anywhere (this process now; every node of
 * a cluster once a shared backend exists) can drop what it holds.
 *
 * What is emitted: one event per op of a committed apply(), in the ops'
 * order: STORAGE_PUT or STORAGE_DEL with the op's kind, ns and id (a DEL
 * of a record that was already missing is announced too: an event says
 * "drop what you hold", never "this changed"). A committed purge() is one
 * STORAGE_PURGE event whose ns is the prefix and whose kind and id are
 * NULL: drop everything whose ns starts with it. Nothing is emitted for a
 * write that failed or was rolled back, nor for get, list, check or scrub.
 *
 * When, and on which thread: after the commit, before apply()/purge()
 * returns, on the thread that called it, for a write made through this
 * handle. A backend shared with other processes also delivers their
 * writes, on a thread of its own, soon after they commit (PostgreSQL:
 * within a second); SQLite does not (another process's write reaches this
 * one only through its reads). Events of different writes may arrive in
 * either order.
 *
 * The flush: a shared backend that may have missed other processes'
 * writes (its listening connection was lost) emits, once it listens
 * again, one STORAGE_PURGE event whose ns is "" (the empty prefix, which
 * every ns starts with): drop everything. Subscribers need nothing
 * special for it; an empty prefix never comes from purge(), which refuses
 * one.
 *
 * What a subscriber must do: be quick and thread-safe, take only its own
 * locks, and never call back into the store (no get, apply, list... from
 * the callback: the backend may hold resources of its own while it
 * emits). The strings are valid only during the call. A subscriber that
 * keeps a copy of records must drop the named entry whatever its version,
 * and must not install a copy it read before the event arrived (a
 * generation count bumped by the callback does it; see kms/keys.c).
 */
enum storage_event_kind {
	STORAGE_EV_PUT = 1,
	STORAGE_EV_DEL = 2,
	STORAGE_EV_PURGE = 3,
	STORAGE_EV_MARK = 4
};

/*
 * The mark: storage_mark(token) sends one STORAGE_EV_MARK event through
 * the feed, after every write this or any process committed before the
 * call (PostgreSQL delivers notifications in commit order). Its kind is
 * STORAGE_MARK_KIND, which no record has, its ns "" and its id the token:
 * a subscriber that acts on record kinds ignores it. A node that has seen
 * a mark has seen every earlier write (the test mode's feed barrier,
 * docs/TESTING.md).
 */
#define STORAGE_MARK_KIND "feed-mark"
#define STORAGE_MAX_MARK 64u
/* K_OK if token is a mark's token (storage_vtbl.mark), else K_E_VALIDATION. */
K_MUST_CHECK k_status storage_mark_check(const char *token);

struct storage_event {
	enum storage_event_kind what;
	const char *kind; /* NULL for STORAGE_EV_PURGE; STORAGE_MARK_KIND for a mark */
	const char *ns;	  /* the record's ns; the prefix for STORAGE_EV_PURGE; "" for a mark */
	const char *id;	  /* NULL for STORAGE_EV_PURGE; the token of a mark */
};

typedef void (*storage_change_cb)(void *arg, const struct storage_event *ev);

/* Called once per kind present in the store, in byte order; non-K_OK stops. */
typedef K_MUST_CHECK k_status (*storage_kind_cb)(void *arg, const char *kind);

/* Subscribers per store handle: one per cache, with room to spare. */
#define STORAGE_MAX_SUBSCRIBERS 16u

struct storage_vtbl {
	/*
	 * Reads one record into doc (appended) and its version. Either may be
	 * NULL when not wanted. K_E_VALIDATION, leaving doc unchanged, if the
	 * document does not fit in doc's max.
	 */
	K_MUST_CHECK k_status (*get)(struct storage *s, const char *kind, const char *ns,
				     const char *id, struct kbuf *doc, int64_t *version);
	/*
	 * Applies all ops atomically and durably, or none. Ops run in order, so
	 * a later op on the same record sees the version an earlier one left.
	 * PUT: with STORAGE_ABSENT the record must not exist; with a version
	 * n > 0 the record must exist with version n (K_E_CONFLICT otherwise).
	 * DEL: with n > 0, K_E_NOT_FOUND if the record is missing and
	 * K_E_CONFLICT if its version is not n; with STORAGE_ANY deleting a
	 * missing record succeeds. n == 0 ops is a no-op.
	 */
	K_MUST_CHECK k_status (*apply)(struct storage *s, const struct storage_op *ops, size_t n);
	/*
	 * Lists records of (kind, ns) with id > after (after NULL or "": from
	 * the start) and, when prefix is non-NULL, id starting with prefix, in
	 * id order, at most limit of them (0 = no limit).
	 * ns NULL lists every namespace (ordered by ns, then id; "after" then
	 * applies to ids within each ns and should be NULL).
	 * The callback gets each record's ns as its argument.
	 */
	K_MUST_CHECK k_status (*list)(struct storage *s, const char *kind, const char *ns,
				      const char *prefix, const char *after, size_t limit,
				      storage_list_cb cb, void *arg);
	/*
	 * Runs the backend's integrity check. K_OK if the store is sound,
	 * K_E_INTERNAL if it is damaged, K_E_STORE_UNAVAILABLE if the check
	 * could not run.
	 */
	K_MUST_CHECK k_status (*check)(struct storage *s);
	void (*close)(struct storage *s);
	/*
	 * Deletes every record, of every kind, whose ns starts with ns_prefix
	 * (non-empty), atomically and durably; K_OK also when none matched.
	 * For the test-mode reset ("ACCOUNT:" empties one account).
	 */
	K_MUST_CHECK k_status (*purge)(struct storage *s, const char *ns_prefix);
	/*
	 * Makes deleted documents unrecoverable from the store's files: the
	 * backend's logs of older page images are folded into the database
	 * (where deleted content is overwritten) and emptied. Call after
	 * deleting key material. K_E_STORE_UNAVAILABLE if a reader or writer
	 * kept it from completing (retry later). PostgreSQL: a VACUUM of the
	 * table, which frees the space of deleted rows but cannot reach the
	 * server's WAL, archives or standbys (docs/CLUSTER.md).
	 */
	K_MUST_CHECK k_status (*scrub)(struct storage *s);
	/*
	 * Adds a subscriber to the change feed (see above): cb(arg, event)
	 * for every write committed after this returns, until close. Meant to
	 * be called while services start, before requests run (it is safe at
	 * any time, but a subscriber added late misses earlier writes).
	 * K_E_LIMIT_EXCEEDED past STORAGE_MAX_SUBSCRIBERS, K_E_VALIDATION for
	 * a NULL cb.
	 */
	K_MUST_CHECK k_status (*subscribe)(struct storage *s, storage_change_cb cb, void *arg);
	/*
	 * Calls cb once per distinct kind that has at least one record, in
	 * byte order (for `kinko store copy`, which must reach every record).
	 * May be NULL in a backend that lacks it (storage_kinds then answers
	 * K_E_UNSUPPORTED).
	 */
	K_MUST_CHECK k_status (*kinds)(struct storage *s, storage_kind_cb cb, void *arg);
	/*
	 * Sends a mark with this token (1..STORAGE_MAX_MARK letters, digits,
	 * '-' or '_') through the change feed (see STORAGE_EV_MARK). A store
	 * shared across processes (PostgreSQL) delivers it to every handle,
	 * this one included, on its feed's own thread, after the events of
	 * every write committed before the call; SQLite emits it to this
	 * handle's subscribers before it returns. May be NULL (storage_mark
	 * then answers K_E_UNSUPPORTED).
	 */
	K_MUST_CHECK k_status (*mark)(struct storage *s, const char *token);
};

struct storage {
	const struct storage_vtbl *vt;
	/*
	 * True for a store other processes write too: PostgreSQL (set by its
	 * open), or a SQLite file several nodes share (`kinko serve
	 * --shared-store` sets it). Their writes reach this process's feed
	 * late (PostgreSQL: on its own thread, within a second) or never
	 * (SQLite). False: every write reaches the feed before the apply()
	 * that made it returns, so a cache kept by the feed is never behind
	 * the store.
	 */
	bool shared;
};

/*
 * Opens the store a URL names, choosing the backend by its scheme:
 *   sqlite:PATH        SQLite. PATH ending in ".db" is the database file
 *                      (its folder is created if missing); any other PATH
 *                      is a folder holding kinko.db, as the data folder does.
 *                      "sqlite:///abs/path" is the same as "sqlite:/abs/path".
 *   PATH               a bare path (no "scheme:" before the first '/'):
 *                      the same as sqlite:PATH.
 *   postgresql://...   (and postgres://) PostgreSQL: the URL is libpq's
 *                      connection URI, handed to libpq as it is.
 * K_E_VALIDATION for an empty URL, an empty path, an unknown scheme or
 * "sqlite://host/...", with a one-line reason in why (may be NULL);
 * otherwise what the backend's open returns (why then names the store).
 * The caller owns *out and frees it with storage_close().
 */
K_MUST_CHECK k_status storage_open(const char *url, struct storage **out, struct kbuf *why);

/*
 * The local folder a store URL keeps its files in (SQLite: the folder of
 * its database file), into dir (n bytes), so that the caller can lock it
 * before opening the store: two servers must never share one SQLite
 * store, whose change feed reaches only its own process.
 * K_E_UNSUPPORTED for a store that keeps no local files (postgresql://),
 * K_E_VALIDATION for a URL storage_open() would refuse or a dir too small.
 */
K_MUST_CHECK k_status storage_local_dir(const char *url, char *dir, size_t n);

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
/* The same with the database file's name in dir given (a name, not a path). */
K_MUST_CHECK k_status storage_sqlite_open_file(const char *dir, const char *file,
					       struct storage **out);

/*
 * Opens the PostgreSQL store a libpq connection string or URI names: runs
 * the schema migrations (under an advisory lock, so that nodes starting
 * together take turns), then starts the listener of the cross-node change
 * feed. Every session kinko opens runs with synchronous_commit on and a
 * statement timeout; libpq's connect_timeout defaults to 3 s unless the
 * URL sets it. K_E_STORE_UNAVAILABLE if the server cannot be reached or
 * refuses the login (the server's answer goes to the log; neither names
 * the password), K_E_VALIDATION if libpq cannot parse the URL,
 * K_E_INTERNAL if the database was written by a newer schema.
 * The caller owns *out and frees it with storage_close().
 */
K_MUST_CHECK k_status storage_pg_open(const char *conninfo, struct storage **out, struct kbuf *why);

/*
 * How long a SQLite store waits for a lock held by another writer before
 * failing with K_E_STORE_UNAVAILABLE (default 5000 ms). Applies to the
 * calls that start after it. K_E_VALIDATION if s is not a SQLite store or
 * ms is negative. Meant for tests and tuning.
 */
K_MUST_CHECK k_status storage_sqlite_set_busy_timeout_ms(struct storage *s, int ms);

static inline K_MUST_CHECK k_status storage_get(struct storage *s, const char *kind, const char *ns,
						const char *id, struct kbuf *doc, int64_t *version)
{
	return s->vt->get(s, kind, ns, id, doc, version);
}
static inline K_MUST_CHECK k_status storage_apply(struct storage *s, const struct storage_op *ops,
						  size_t n)
{
	return s->vt->apply(s, ops, n);
}
static inline K_MUST_CHECK k_status storage_list(struct storage *s, const char *kind,
						 const char *ns, const char *prefix,
						 const char *after, size_t limit,
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
static inline K_MUST_CHECK k_status storage_subscribe(struct storage *s, storage_change_cb cb,
						      void *arg)
{
	return s->vt->subscribe != NULL ? s->vt->subscribe(s, cb, arg) : K_E_UNSUPPORTED;
}
static inline K_MUST_CHECK k_status storage_mark(struct storage *s, const char *token)
{
	return s->vt->mark != NULL ? s->vt->mark(s, token) : K_E_UNSUPPORTED;
}
static inline K_MUST_CHECK k_status storage_kinds(struct storage *s, storage_kind_cb cb, void *arg)
{
	return s->vt->kinds != NULL ? s->vt->kinds(s, cb, arg) : K_E_UNSUPPORTED;
}
static inline void storage_close(struct storage *s)
{
	if (s != NULL)
		s->vt->close(s);
}

/*
 * Backup (kinko backup): writes a consistent copy of the store, as of one
 * moment, to dest_file, which must not exist (created 0600), while the
 * store keeps serving other threads and processes. The copy is a
 * self-contained database file that storage_sqlite_open_file can open; it
 * has passed the backend's integrity check and is fsync'd when this
 * returns K_OK. cb (may be NULL) then gets the copy's record count per
 * kind, in kind order; a non-K_OK return stops and is returned.
 * K_E_UNSUPPORTED for a backend that cannot (only SQLite can: a shared
 * database has its own backup tools). On failure dest_file is removed and
 * why says what failed.
 */
typedef K_MUST_CHECK k_status (*storage_count_cb)(void *arg, const char *kind, uint64_t n);
K_MUST_CHECK k_status storage_backup(struct storage *s, const char *dest_file, storage_count_cb cb,
				     void *arg, struct kbuf *why);

#endif
