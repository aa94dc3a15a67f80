/*
 * sqlite_backup.c — storage_backup for the SQLite backend (storage.h): a
 * consistent copy of a store that keeps serving.
 *
 * SQLite's online backup API copies every page of the database while one
 * read transaction is open on the source, so the copy is one snapshot of
 * committed writes. In WAL mode a reader blocks no writer: the server goes
 * on committing while the copy is taken, and those later writes are simply
 * not in it. The copy is then made a single self-contained file (rollback
 * journal mode, no -wal beside it), checked with PRAGMA integrity_check,
 * counted, and fsync'd.
 */
#include "storage/sqlite_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/banned.h"

/* Pages copied per step: small steps would let writers change the source between them. */
#define COPY_ALL_PAGES (-1)

/* Creates the destination file (it must not exist), mode 0600, so that the copy is never wider. */
static K_MUST_CHECK k_status create_dest(const char *path, struct kbuf *why)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		kbuf_note(why, "cannot create %s: %s", path, strerror(errno));
		return K_E_STORE_UNAVAILABLE;
	}
	close(fd);
	return K_OK;
}

/* Copies src's main database into dst in one step: one read snapshot of the source. */
static K_MUST_CHECK k_status copy_pages(sqlite3 *src, sqlite3 *dst, struct kbuf *why)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	if (b == NULL) {
		kbuf_note(why, "cannot start the copy: %s", sqlite3_errmsg(dst));
		return K_E_STORE_UNAVAILABLE;
	}
	int step = sqlite3_backup_step(b, COPY_ALL_PAGES);
	int fin = sqlite3_backup_finish(b);
	if (step != SQLITE_DONE || fin != SQLITE_OK) {
		kbuf_note(why, "the copy did not complete: %s",
			  sqlite3_errstr(step != SQLITE_DONE ? step : fin));
		return K_E_STORE_UNAVAILABLE;
	}
	return K_OK;
}

/* Runs one statement on the copy; a failure is named in why. */
static K_MUST_CHECK k_status exec_dst(sqlite3 *dst, const char *sql, struct kbuf *why)
{
	char *err = NULL;
	int rc = sqlite3_exec(dst, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK) {
		kbuf_note(why, "%s on the copy failed: %s", sql,
			  err != NULL ? err : sqlite3_errstr(rc));
		sqlite3_free(err);
		return K_E_STORE_UNAVAILABLE;
	}
	return K_OK;
}

/* PRAGMA integrity_check on the copy: K_OK only for its single "ok" row. */
static K_MUST_CHECK k_status check_dst(sqlite3 *dst, struct kbuf *why)
{
	sqlite3_stmt *st = NULL;
	k_status rc = K_E_INTERNAL;
	if (sqlite3_prepare_v2(dst, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		const char *first = (const char *)sqlite3_column_text(st, 0);
		if (first != NULL && strcmp(first, "ok") == 0)
			rc = K_OK;
		else
			kbuf_note(why, "the copy fails its integrity check: %.200s",
				  first != NULL ? first : "(no answer)");
	} else {
		kbuf_note(why, "cannot run the integrity check on the copy: %s",
			  sqlite3_errmsg(dst));
	}
	sqlite3_finalize(st);
	return rc;
}

/* Hands cb the record count of each kind in the copy, in kind order. */
static K_MUST_CHECK k_status count_dst(sqlite3 *dst, storage_count_cb cb, void *arg,
				       struct kbuf *why)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(dst, "SELECT kind, count(*) FROM docs GROUP BY kind ORDER BY kind",
			       -1, &st, NULL) != SQLITE_OK) {
		kbuf_note(why, "cannot count the copy's records: %s", sqlite3_errmsg(dst));
		return K_E_STORE_UNAVAILABLE;
	}
	k_status rc = K_OK;
	int src = SQLITE_ROW;
	while (k_ok(rc) && (src = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(st, 0);
		rc = cb(arg, kind != NULL ? kind : "", (uint64_t)sqlite3_column_int64(st, 1));
	}
	if (k_ok(rc) && src != SQLITE_DONE) {
		kbuf_note(why, "cannot count the copy's records: %s", sqlite3_errstr(src));
		rc = K_E_STORE_UNAVAILABLE;
	}
	sqlite3_finalize(st);
	return rc;
}

/* The copy's bytes on disk before the caller calls it complete. */
static K_MUST_CHECK k_status sync_file(const char *path, struct kbuf *why)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	if (!ok) {
		kbuf_note(why, "cannot flush %s to disk: %s", path, strerror(errno));
		return K_E_STORE_UNAVAILABLE;
	}
	return K_OK;
}

/* Everything on the copy's own handle: pages, journal mode, check, counts. */
static K_MUST_CHECK k_status backup_into(struct sqlite_conn *c, const char *dest_file,
					 storage_count_cb cb, void *arg, struct kbuf *why)
{
	sqlite3 *dst = NULL;
	k_status rc = K_OK;
	if (sqlite3_open_v2(dest_file, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		kbuf_note(why, "cannot open %s: %s", dest_file,
			  dst != NULL ? sqlite3_errmsg(dst) : "out of memory");
		rc = K_E_STORE_UNAVAILABLE;
		goto out;
	}
	GUARD_GOTO(copy_pages(c->db, dst, why));
	GUARD_GOTO(exec_dst(dst, "PRAGMA journal_mode=DELETE", why));
	GUARD_GOTO(check_dst(dst, why));
	if (cb != NULL)
		GUARD_GOTO(count_dst(dst, cb, arg, why));
out:
	sqlite3_close(dst);
	return rc;
}

k_status storage_backup(struct storage *s, const char *dest_file, storage_count_cb cb, void *arg,
			struct kbuf *why)
{
	ENSURE(s != NULL && dest_file != NULL && dest_file[0] != 0, K_E_VALIDATION);
	if (s->vt->check != sqlite_check) {
		kbuf_note(why, "this store is not a SQLite store; back it up with its own tools");
		return K_E_UNSUPPORTED;
	}
	GUARD(create_dest(dest_file, why));
	struct sqlite_store *st = store_of(s);
	struct sqlite_conn *c = NULL;
	k_status rc = sqlite_pool_acquire(st, false, &c);
	if (k_failed(rc)) {
		kbuf_note(why, "cannot read the store: %s", k_status_name(rc));
		goto out;
	}
	rc = backup_into(c, dest_file, cb, arg, why);
	sqlite_pool_release(st, c);
	if (k_ok(rc))
		rc = sync_file(dest_file, why);
out:
	if (k_failed(rc))
		(void)unlink(dest_file);
	return rc;
}
