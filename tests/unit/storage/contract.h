/*
 * contract.h — the storage.h contract as tests that every backend runs.
 *
 * sqlite_test.c and pg_test.c open a store of their backend and hand it to
 * contract_run(); what only one backend does (SQLite's files, locks and
 * schema; PostgreSQL's cross-node feed) stays in their own file.
 *
 * The contract runs on one store, which must be empty when it starts. Each
 * test writes kinds of its own (listed at contract_kinds in contract.c),
 * so that the tests can share that store: a shared database (PostgreSQL)
 * cannot be made afresh for every test the way a SQLite folder can. Some
 * tests read what an earlier one wrote, and the last reads the kinds every
 * other test left behind, so they run in contract_run()'s order. Both
 * backends pass every check alike: no check depends on which one runs it.
 *
 * The helpers below are shared by the backends' own tests too.
 */
#ifndef KINKO_TESTS_STORAGE_CONTRACT_H
#define KINKO_TESTS_STORAGE_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

/* Bytes a listing collected as text may take (list_str, struct collect). */
#define CONTRACT_LIST_MAX (64u * 1024u)

/* Runs every contract test on s, in order, each under its own name. */
void contract_run(struct storage *s);

/* One PUT (of doc as its bytes, without the NUL) or one DEL, applied alone. */
K_MUST_CHECK k_status put(struct storage *s, const char *kind, const char *ns, const char *id,
			  const char *doc, int64_t expect);
K_MUST_CHECK k_status del(struct storage *s, const char *kind, const char *ns, const char *id,
			  int64_t expect);

/* The document as a string in out ("" if missing), its version (0 if missing). */
K_MUST_CHECK k_status get_str(struct storage *s, const char *kind, const char *ns, const char *id,
			      char *out, size_t n, int64_t *version);

/*
 * Collects listed records as "id,id,..." (or "ns/id,..." with with_ns) in
 * out, which the caller initialises with kbuf_init and releases.
 */
struct collect {
	struct kbuf out;
	bool with_ns;
	size_t stop_after; /* return K_E_LIMIT_EXCEEDED after this many (0: never) */
	size_t calls;
};

K_MUST_CHECK k_status collect_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				 int64_t version);

/* A listing as text in out: "id,..." for one ns, "ns/id,..." for ns NULL. */
K_MUST_CHECK k_status list_str(struct storage *s, const char *kind, const char *ns,
			       const char *prefix, const char *after, size_t limit, char *out,
			       size_t n);

/* Milliseconds on the monotonic clock. */
int64_t now_ms(void);

#endif
