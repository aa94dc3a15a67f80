/*
 * open.c — storage_open: from a store URL to a backend (see storage.h).
 *
 * The scheme picks the backend; what follows it is the backend's own. A
 * new backend is one more row in `backends` and its files beside sqlite.c
 * and pg.c.
 */
#include "storage/storage.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/banned.h"

/* Longest URL or path accepted (the data folder's limit, with room for a file). */
#define URL_MAX 4608u

typedef K_MUST_CHECK k_status (*backend_open_fn)(const char *rest, struct storage **out,
						 struct kbuf *why);

/*
 * The part after "sqlite:". "//" introduces an authority in a URL; SQLite
 * has none, so "sqlite:///abs" is "/abs" and "sqlite://host/x" is refused.
 * A path ending in ".db" names the database file; any other, the folder
 * that holds kinko.db.
 */
static K_MUST_CHECK k_status sqlite_path(const char **rest, struct kbuf *why)
{
	if (strncmp(*rest, "//", 2) == 0) {
		if ((*rest)[2] != '/') {
			kbuf_note(why, "a sqlite: store has no host: write sqlite:PATH or "
				       "sqlite:///ABSOLUTE-PATH");
			return K_E_VALIDATION;
		}
		*rest += 2;
	}
	if ((*rest)[0] == 0) {
		kbuf_note(why, "the sqlite: store names no path");
		return K_E_VALIDATION;
	}
	return K_OK;
}

/*
 * Splits a sqlite: path into its folder (into dir) and its database file
 * name (NULL: the folder's kinko.db).
 */
static const char *sqlite_split(const char *path, char *dir, size_t dn)
{
	size_t n = strlen(path);
	const char *slash = strrchr(path, '/');
	if (!(n > 3 && strcmp(path + n - 3, ".db") == 0 && (slash == NULL || slash[1] != 0))) {
		snprintf(dir, dn, "%s", path);
		return NULL;
	}
	if (slash == NULL)
		snprintf(dir, dn, ".");
	else if (slash == path)
		snprintf(dir, dn, "/");
	else
		snprintf(dir, dn, "%.*s", (int)(slash - path), path);
	return slash != NULL ? slash + 1 : path;
}

static K_MUST_CHECK k_status open_sqlite(const char *rest, struct storage **out, struct kbuf *why)
{
	GUARD(sqlite_path(&rest, why));
	char dir[URL_MAX];
	const char *file = sqlite_split(rest, dir, sizeof dir);
	k_status rc = file != NULL ? storage_sqlite_open_file(dir, file, out)
				   : storage_sqlite_open(rest, out);
	if (k_failed(rc))
		kbuf_note(why, "cannot open the SQLite store %s (%s)", rest, k_status_name(rc));
	return rc;
}

/* libpq takes the whole URL (postgresql:// and postgres:// are both its). */
static K_MUST_CHECK k_status open_postgresql(const char *url, struct storage **out,
					     struct kbuf *why)
{
	return storage_pg_open(url, out, why);
}

static const struct {
	const char *scheme; /* with its colon */
	backend_open_fn open;
	bool whole_url; /* the backend gets the whole URL, not what follows the colon */
} backends[] = {
	{"sqlite:", open_sqlite, false},
	{"postgresql:", open_postgresql, true},
	{"postgres:", open_postgresql, true},
};

/*
 * The length of the URL's scheme including its colon, 0 if it has none
 * (RFC 3986: a letter, then letters, digits, '+', '-' or '.', then ':'
 * before any '/'). A bare path has none.
 */
static size_t scheme_len(const char *url)
{
	size_t i = 0;
	if (!((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z')))
		return 0;
	for (i = 1; url[i] != 0 && url[i] != ':'; i++) {
		char ch = url[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.';
		if (!ok)
			return 0;
	}
	return url[i] == ':' ? i + 1 : 0;
}

static K_MUST_CHECK k_status open_url(const char *url, struct storage **out, struct kbuf *why)
{
	if (url == NULL || url[0] == 0) {
		kbuf_note(why, "no store named");
		return K_E_VALIDATION;
	}
	if (strnlen(url, URL_MAX) >= URL_MAX) {
		kbuf_note(why, "the store's URL is longer than %u bytes", URL_MAX - 1);
		return K_E_VALIDATION;
	}
	size_t sl = scheme_len(url);
	if (sl == 0)
		return open_sqlite(url, out, why);
	for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
		if (strlen(backends[i].scheme) == sl &&
		    strncasecmp(url, backends[i].scheme, sl) == 0)
			return backends[i].open(backends[i].whole_url ? url : url + sl, out, why);
	}
	kbuf_note(why, "unknown store scheme \"%.*s\" (kinko knows sqlite: and postgresql://)",
		  (int)(sl - 1), url);
	return K_E_VALIDATION;
}

k_status storage_open(const char *url, struct storage **out, struct kbuf *why)
{
	ENSURE(out != NULL, K_E_VALIDATION);
	*out = NULL;
	struct kbuf scratch;
	kbuf_init(&scratch, KBUF_NOTE_MAX);
	k_status rc = open_url(url, out, why != NULL ? why : &scratch);
	kbuf_release(&scratch);
	return rc;
}

k_status storage_local_dir(const char *url, char *dir, size_t n)
{
	ENSURE(url != NULL && dir != NULL && n > 0, K_E_VALIDATION);
	ENSURE(strnlen(url, URL_MAX) < URL_MAX, K_E_VALIDATION);
	size_t sl = scheme_len(url);
	const char *rest = url;
	if (sl != 0) {
		ENSURE(sl == strlen("sqlite:") && strncasecmp(url, "sqlite:", sl) == 0,
		       K_E_UNSUPPORTED);
		rest = url + sl;
	}
	struct kbuf scratch;
	kbuf_init(&scratch, KBUF_NOTE_MAX);
	k_status rc = sqlite_path(&rest, &scratch);
	kbuf_release(&scratch);
	GUARD(rc);
	char tmp[URL_MAX];
	(void)sqlite_split(rest, tmp, sizeof tmp);
	ENSURE(strlen(tmp) < n, K_E_VALIDATION);
	snprintf(dir, n, "%s", tmp);
	return K_OK;
}
