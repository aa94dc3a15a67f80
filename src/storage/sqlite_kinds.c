/*
 * sqlite_kinds.c — the SQLite backend's kinds(): every kind that has a
 * record, in byte order (storage.h). `kinko store copy` walks them.
 */
#include "storage/sqlite_internal.h"

#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/banned.h"

/* The kinds are read in full first, so the callback runs with no connection held. */
k_status sqlite_kinds(struct storage *s, storage_kind_cb cb, void *arg)
{
	struct sqlite_store *st = store_of(s);
	struct sqlite_conn *c = NULL;
	sqlite3_stmt *stmt = NULL;
	struct kbuf names;
	k_status rc = K_OK;
	ENSURE(cb != NULL, K_E_VALIDATION);
	kbuf_init(&names, STORAGE_MAX_DOC);
	GUARD_GOTO(sqlite_pool_acquire(st, false, &c));
	int src = sqlite3_prepare_v2(c->db, "SELECT DISTINCT kind FROM docs ORDER BY kind", -1,
				     &stmt, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_step(stmt);
	while (src == SQLITE_ROW) {
		const unsigned char *k = sqlite3_column_text(stmt, 0);
		ENSURE_GOTO(k != NULL, K_E_INTERNAL);
		GUARD_GOTO(kbuf_append(&names, k, strlen((const char *)k) + 1));
		src = sqlite3_step(stmt);
	}
	if (src != SQLITE_DONE) {
		rc = sqlite_conn_fail(c, src, "list kinds");
		goto out;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	sqlite_pool_release(st, c);
	c = NULL;
	for (size_t off = 0; off < names.len && k_ok(rc);) {
		const char *k = (const char *)names.ptr + off;
		rc = cb(arg, k);
		off += strlen(k) + 1;
	}
out:
	sqlite3_finalize(stmt);
	sqlite_pool_release(st, c);
	kbuf_release(&names);
	return rc;
}
