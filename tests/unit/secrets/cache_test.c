/*
 * cache_test.c — the secrets' read cache (secrets/cache.c): a read outside
 * a write section is served from the cache after the first; a write
 * through the store drops the entry (the change feed), so the next read
 * sees the new version; a write section reads the store itself; a purge
 * drops a namespace; the cache holds nothing for a missing record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "storage/storage.h"
#include "testlib.h"
#include "core/banned.h"

static char tmp_root[] = "/tmp/kinko-smcache-test-XXXXXX";
static struct storage *st;

#define NS "111122223333:us-east-1"

static K_MUST_CHECK k_status put(const char *kind, const char *id, const char *doc)
{
	struct storage_op op = {STORAGE_PUT, kind, NS, id, kslice_cstr(doc), STORAGE_ANY};
	return storage_apply(st, &op, 1);
}

/* The record read through the cache, as a string ("" when it fails). */
static const char *read_cached(const char *kind, const char *id, int64_t *version)
{
	static char out[256];
	struct kbuf b;
	kbuf_init(&b, sizeof out - 1);
	out[0] = 0;
	if (k_ok(sm_cache_get(kind, NS, id, &b, version)))
		snprintf(out, sizeof out, "%.*s", (int)b.len, (const char *)b.ptr);
	kbuf_release(&b);
	return out;
}

static void test_read_write_read(void)
{
	int64_t v1 = 0, v2 = 0, v3 = 0;
	CHECK_STATUS(put("secret", "a", "{\"Name\":\"a\",\"n\":1}"), K_OK);
	size_t before = sm_cache_bytes();
	CHECK_STR(read_cached("secret", "a", &v1), "{\"Name\":\"a\",\"n\":1}");
	CHECK(sm_cache_bytes() > before); /* cached by the first read */
	CHECK_STR(read_cached("secret", "a", &v2), "{\"Name\":\"a\",\"n\":1}");
	CHECK(v1 == v2 && v1 > 0);
	CHECK_STATUS(put("secret", "a", "{\"Name\":\"a\",\"n\":2}"), K_OK);
	CHECK_STR(read_cached("secret", "a", &v3), "{\"Name\":\"a\",\"n\":2}");
	CHECK(v3 > v2);
	/* a value record is cached under its own kind */
	CHECK_STATUS(put("secretvalue", "a", "{\"v\":1}"), K_OK);
	CHECK_STR(read_cached("secretvalue", "a", NULL), "{\"v\":1}");
	CHECK_STR(read_cached("secret", "a", NULL), "{\"Name\":\"a\",\"n\":2}");
	struct storage_op del = {STORAGE_DEL, "secretvalue", NS, "a", {0}, STORAGE_ANY};
	CHECK_STATUS(storage_apply(st, &del, 1), K_OK);
	struct kbuf b;
	kbuf_init(&b, 64);
	CHECK_STATUS(sm_cache_get("secretvalue", NS, "a", &b, NULL), K_E_NOT_FOUND);
	CHECK_STATUS(sm_cache_get("key", NS, "a", &b, NULL),
		     K_E_VALIDATION); /* not a secret kind */
	kbuf_release(&b);
}

static void test_section_reads_the_store(void)
{
	CHECK_STATUS(put("secret", "b", "{\"Name\":\"b\",\"n\":1}"), K_OK);
	struct sm_secret s;
	CHECK_STATUS(sm_load(NS, "b", &s), K_OK); /* cached */
	sm_secret_release(&s);
	CHECK(!sm_in_section());
	sm_lock();
	CHECK(sm_in_section());
	CHECK_STATUS(sm_load(NS, "b", &s), K_OK);
	CHECK_EQ_INT(json_integer_value(json_object_get(s.doc, "n")), 1);
	sm_secret_release(&s);
	sm_unlock();
	CHECK(!sm_in_section());
}

static void test_purge_and_clear(void)
{
	CHECK_STATUS(put("secret", "c", "{\"Name\":\"c\"}"), K_OK);
	CHECK_STR(read_cached("secret", "c", NULL), "{\"Name\":\"c\"}");
	CHECK(sm_cache_bytes() > 0);
	sm_cache_clear();
	CHECK_EQ_INT((long long)sm_cache_bytes(), 0);
	CHECK_STR(read_cached("secret", "c", NULL), "{\"Name\":\"c\"}");
	CHECK_STATUS(storage_purge(st, "111122223333:"), K_OK);
	CHECK_EQ_INT((long long)sm_cache_bytes(), 0);
	struct kbuf b;
	kbuf_init(&b, 64);
	CHECK_STATUS(sm_cache_get("secret", NS, "c", &b, NULL), K_E_NOT_FOUND);
	kbuf_release(&b);
}

/* A store other processes write too (storage.h, shared) is read every time, never cached. */
static void test_shared_store_is_not_cached(void)
{
	sm_cache_clear();
	CHECK_STATUS(put("secret", "d", "{\"Name\":\"d\"}"), K_OK);
	st->shared = true;
	CHECK_STR(read_cached("secret", "d", NULL), "{\"Name\":\"d\"}");
	CHECK_EQ_INT((long long)sm_cache_bytes(), 0);
	st->shared = false;
	CHECK_STR(read_cached("secret", "d", NULL), "{\"Name\":\"d\"}");
	CHECK(sm_cache_bytes() > 0);
}

int main(void)
{
	if (mkdtemp(tmp_root) == NULL)
		return 1;
	if (k_failed(storage_sqlite_open(tmp_root, &st)) || k_failed(sm_set_store(st)) ||
	    k_failed(storage_subscribe(st, sm_cache_on_change, NULL)))
		return 1;
	RUN(test_read_write_read);
	RUN(test_section_reads_the_store);
	RUN(test_purge_and_clear);
	RUN(test_shared_store_is_not_cached);
	sm_cache_clear();
	storage_close(st);
	tl_remove_tree(tmp_root);
	return tl_summary();
}
