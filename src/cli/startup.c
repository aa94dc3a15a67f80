/*
 * startup.c — the data-folder lock, the listen check and the root-key
 * checks of `kinko serve` (see startup.h).
 */
#include "cli/startup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "keystore/keystore.h"
#include "kms/kms.h"
#include "core/banned.h"

/* ---- the data-folder lock ------------------------------------------------ */

/*
 * The pid the holder wrote. It writes right after it takes the lock, so a
 * reader that finds the file empty waits a little for it; 0 if unknown.
 */
static long lock_holder(int fd)
{
	for (int i = 0; i < 20; i++) {
		char text[32] = {0};
		ssize_t n = pread(fd, text, sizeof text - 1, 0);
		char *end = NULL;
		long pid = n > 0 ? strtol(text, &end, 10) : 0;
		if (pid > 0 && end != NULL && (*end == '\n' || *end == 0))
			return pid;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

k_status startup_lock_dir(const char *dir, int *fd_out, struct kbuf *msg)
{
	char path[PATH_MAX];
	int len = snprintf(path, sizeof path, "%s/%s", dir, STARTUP_LOCK_FILE);
	if (len < 0 || (size_t)len >= sizeof path) {
		kbuf_note(msg, "the folder name %s is too long", dir);
		return K_E_STORE_UNAVAILABLE;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	/* On a read-only folder an existing lock file still locks. */
	if (fd < 0 && (errno == EROFS || errno == EACCES))
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		kbuf_note(msg, "cannot open the lock file %s: %s", path, strerror(errno));
		return K_E_STORE_UNAVAILABLE;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		if (e == EWOULDBLOCK) {
			long pid = lock_holder(fd);
			if (pid > 0)
				kbuf_note(msg, "another kinko (pid %ld) is using %s", pid, dir);
			else
				kbuf_note(msg, "another kinko is using %s (it holds %s)", dir,
					  path);
		} else {
			kbuf_note(msg, "cannot lock %s: %s", path, strerror(e));
		}
		close(fd);
		return e == EWOULDBLOCK ? K_E_CONFLICT : K_E_STORE_UNAVAILABLE;
	}
	/* The pid is for the message above only: failing to write it is harmless. */
	char text[32];
	int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == 0 && n > 0 && pwrite(fd, text, (size_t)n, 0) != n)
		LOG_WARN("cannot write the pid into %s", path);
	*fd_out = fd;
	return K_OK;
}

void startup_unlock_dir(int fd)
{
	if (fd >= 0)
		close(fd); /* the lock goes with the file; the file stays for the next start */
}

/* ---- the listen address ----------------------------------------------------- */

k_status startup_check_listen(const char *host, unsigned port, struct kbuf *msg)
{
	if (port == 0)
		return K_OK;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		sl = sizeof *s4;
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		sl = sizeof *s6;
	} else {
		return K_OK;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		kbuf_note(msg, "cannot make a socket: %s", strerror(errno));
		return K_E_CONFLICT;
	}
	/* As the listener does: a port held only by closing connections is free. */
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	int rc = bind(fd, (struct sockaddr *)&ss, sl);
	int e = errno;
	close(fd);
	if (rc != 0) {
		kbuf_note(msg, "cannot listen on %s:%u: %s", host, port, strerror(e));
		return K_E_CONFLICT;
	}
	return K_OK;
}

/* ---- where the root key lives ------------------------------------------------ */

/*
 * The absolute, symlink-free form of `path`; for a file that does not
 * exist, its folder's form plus its name. False if neither resolves.
 */
static bool resolve(const char *path, char out[PATH_MAX])
{
	if (realpath(path, out) != NULL)
		return true;
	char a[PATH_MAX], b[PATH_MAX], dirpart[PATH_MAX];
	if (snprintf(a, sizeof a, "%s", path) >= (int)sizeof a)
		return false;
	snprintf(b, sizeof b, "%s", path);
	if (realpath(dirname(a), dirpart) == NULL)
		return false;
	return snprintf(out, PATH_MAX, "%s/%s", dirpart, basename(b)) < PATH_MAX;
}

bool startup_same_dir(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];
	return realpath(a, ra) != NULL && realpath(b, rb) != NULL && strcmp(ra, rb) == 0;
}

k_status startup_root_key_outside(const char *root_key_file, const char *data_dir, struct kbuf *msg)
{
	char key[PATH_MAX], data[PATH_MAX];
	if (!resolve(root_key_file, key) || realpath(data_dir, data) == NULL)
		return K_OK; /* opening them reports the problem */
	size_t dl = strlen(data);
	bool inside = strcmp(data, "/") == 0 || (strncmp(key, data, dl) == 0 && key[dl] == '/');
	if (!inside)
		return K_OK;
	kbuf_note(msg,
		  "the root key file %s is inside the data folder %s, so a backup of the folder "
		  "holds the key beside everything it protects; keep it elsewhere (--root-key FILE "
		  "or \"root_key_file\"), or allow it with --allow-root-key-in-data or "
		  "\"root_key_in_data_dir_ok\": true",
		  root_key_file, data_dir);
	return K_E_VALIDATION;
}

/* ---- the root key's check value --------------------------------------------- */

struct probe {
	unsigned ok, bad;
};

/* Stops at the first key whose material unwraps: the root key is the store's. */
static K_MUST_CHECK k_status probe_key(void *arg, const char *ns, const char *id, struct kslice doc,
				       int64_t version)
{
	(void)id;
	struct probe *p = arg;
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	struct kms_key *k = NULL;
	k_status rc = j != NULL ? kms_key_from_doc(ns ? ns : "", j, version, &k) : K_E_INTERNAL;
	json_decref(j);
	if (k != NULL)
		kms_key_unref(k);
	if (k_failed(rc)) {
		p->bad++;
		return K_OK;
	}
	p->ok++;
	return K_E_LIMIT_EXCEEDED;
}

/*
 * A store written before check values existed: its key material says
 * whether this root key is the store's. The value is recorded only then,
 * so a wrong key at the first start after an upgrade is not enshrined.
 */
static K_MUST_CHECK k_status adopt(struct storage *st, const char *root_key_file,
				   const char *data_dir, struct kbuf *msg)
{
	struct probe p = {0, 0};
	k_status rc = storage_list(st, "key", NULL, NULL, NULL, 0, probe_key, &p);
	if (k_failed(rc) && !k_is(rc, K_E_LIMIT_EXCEEDED)) {
		kbuf_note(msg, "cannot list the keys in %s: %s", data_dir, k_status_name(rc));
		return rc;
	}
	if (p.ok == 0 && p.bad > 0) {
		kbuf_note(msg,
			  "the root key %s does not match the store in %s (none of its key "
			  "material unwraps)",
			  root_key_file, data_dir);
		return K_E_VALIDATION;
	}
	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	rc = kbuf_append_str(&doc, "{\"KeyCheckValue\":\"");
	if (k_ok(rc))
		rc = keystore_check_value(&doc);
	if (k_ok(rc))
		rc = kbuf_append_str(&doc, "\"}");
	struct storage_op op = {.op = STORAGE_PUT,
				.kind = KEYSTORE_CHECK_KIND,
				.ns = KEYSTORE_CHECK_NS,
				.id = KEYSTORE_CHECK_ID,
				.doc = kbuf_slice(&doc),
				.expect = STORAGE_ABSENT};
	if (k_ok(rc))
		rc = storage_apply(st, &op, 1);
	kbuf_release(&doc);
	if (k_failed(rc)) {
		kbuf_note(msg, "cannot record the root key's check value in %s: %s", data_dir,
			  k_status_name(rc));
		return rc;
	}
	LOG_INFO("recorded the root key's check value in the store");
	return K_OK;
}

k_status startup_root_key_matches(struct storage *st, const char *root_key_file,
				  const char *data_dir, bool adopt_missing, struct kbuf *msg)
{
	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	k_status rc = storage_get(st, KEYSTORE_CHECK_KIND, KEYSTORE_CHECK_NS, KEYSTORE_CHECK_ID,
				  &doc, NULL);
	if (k_is(rc, K_E_NOT_FOUND)) {
		kbuf_release(&doc);
		return adopt_missing ? adopt(st, root_key_file, data_dir, msg) : K_E_NOT_FOUND;
	}
	if (k_failed(rc)) {
		kbuf_release(&doc);
		kbuf_note(msg, "cannot read the key check value in %s: %s", data_dir,
			  k_status_name(rc));
		return rc;
	}
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	json_t *v = json_object_get(j, "KeyCheckValue");
	rc = json_is_string(v) ? keystore_check_value_matches(
					 kslice_make(json_string_value(v), json_string_length(v)))
			       : K_E_INTERNAL;
	json_decref(j);
	kbuf_release(&doc);
	if (k_is(rc, K_E_VALIDATION))
		kbuf_note(
			msg,
			"the root key %s does not match the store in %s (key check value differs)",
			root_key_file, data_dir);
	else if (k_failed(rc))
		kbuf_note(msg, "the key check value record in %s is damaged", data_dir);
	return rc;
}
