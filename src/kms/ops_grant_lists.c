/*
 * ops_grant_lists.c — ListGrants and ListRetirableGrants, read page by
 * page from the grant records (kms/grants.h): a page reads at most
 * Limit + 1 records, and a marker names the last grant returned.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/grants.h"
#include "kms/kms.h"
#include "kms/store.h"
#include "core/json.h"
#include "core/banned.h"

/* The grant as the List operations show it: no token, the key's ARN as KeyId. */
static json_t *grant_entry(const json_t *g)
{
	json_t *e = json_object();
	if (e == NULL)
		return NULL;
	json_object_set(e, "KeyId", json_object_get(g, "KeyArn"));
	static const char *const members[] = {"GrantId",
					      "Name",
					      "CreationDate",
					      "GranteePrincipal",
					      "RetiringPrincipal",
					      "IssuingAccount",
					      "Operations",
					      "Constraints",
					      NULL};
	for (size_t i = 0; members[i] != NULL; i++) {
		json_t *v = json_object_get(g, members[i]);
		if (v != NULL)
			json_object_set(e, members[i], v);
	}
	return e;
}

/* A marker kinko gave: "<key id>/<grant id>" of the last grant of the previous page. */
static bool valid_marker(const char *m)
{
	size_t n = strlen(m);
	if (n < 38 || n > KMS_GRANT_RECORD_ID_BUF - 1 || m[36] != '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = m[i];
		bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
			  (ch == '-' && i < 36) || i == 36;
		if (!ok)
			return false;
	}
	return true;
}

/* Limit (1..100, default 50) and Marker. */
static K_MUST_CHECK k_status page_args(struct api_ctx *c, json_t *in, size_t *limit,
				       const char **marker)
{
	int64_t lim = 50;
	bool has_limit;
	GUARD(api_int(c, in, "Limit", false, 1, 100, &has_limit, &lim));
	GUARD(api_string(c, in, "Marker", false, 1, 320, marker));
	if (*marker != NULL && !valid_marker(*marker))
		return api_fail(c, K_E_INVALID_MARKER, "Invalid marker: %.64s", *marker);
	*limit = (size_t)lim;
	return K_OK;
}

/* The page: Grants, Truncated, and NextMarker (the last grant's record id) when truncated. */
struct page {
	json_t *grants;
	size_t limit;
	bool more;
	char next[KMS_GRANT_RECORD_ID_BUF];
	const char *grantee; /* ListGrants' filter, or NULL */
};

/* Takes e. Stops (K_E_LIMIT_EXCEEDED, not an error) once the page is full and one more exists. */
static K_MUST_CHECK k_status page_add(struct page *p, const char *record_id, json_t *e)
{
	if (json_array_size(p->grants) == p->limit) {
		json_decref(e);
		p->more = true;
		return K_E_LIMIT_EXCEEDED;
	}
	ENSURE(e != NULL, K_E_INTERNAL);
	json_array_append_new(p->grants, e);
	snprintf(p->next, sizeof p->next, "%s", record_id);
	return K_OK;
}

static K_MUST_CHECK k_status page_finish(struct page *p, k_status rc, json_t *out)
{
	if (k_is(rc, K_E_LIMIT_EXCEEDED))
		rc = K_OK;
	if (k_ok(rc)) {
		json_object_set(out, "Grants", p->grants);
		json_object_set_new(out, "Truncated", json_boolean(p->more));
		if (p->more)
			json_object_set_new(out, "NextMarker", json_string(p->next));
	}
	json_decref(p->grants);
	return rc;
}

static K_MUST_CHECK k_status list_cb(void *arg, const char *record_id, const json_t *doc)
{
	struct page *p = arg;
	const char *gp = json_string_value(json_object_get(doc, "GranteePrincipal"));
	if (p->grantee != NULL && (gp == NULL || strcmp(gp, p->grantee) != 0))
		return K_OK;
	return page_add(p, record_id, grant_entry(doc));
}

/* ListGrants' GrantId filter: at most that one grant. */
static K_MUST_CHECK k_status list_one(const struct kms_key *k, const char *grant_id, struct page *p)
{
	if (strlen(grant_id) > KMS_GRANT_ID_LEN)
		return K_OK;
	char rec[KMS_GRANT_RECORD_ID_BUF];
	kms_grant_record_id(k->id, grant_id, rec);
	struct kbuf doc;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	k_status rc = storage_get(kms_store(), KMS_GRANT_KIND, k->ns, rec, &doc, NULL);
	json_t *j = k_ok(rc) ? json_loadb((const char *)doc.ptr, doc.len, 0, NULL) : NULL;
	kbuf_release(&doc);
	if (k_is(rc, K_E_NOT_FOUND))
		return K_OK;
	GUARD(rc);
	ENSURE(j != NULL, K_E_INTERNAL);
	rc = list_cb(p, rec, j);
	json_decref(j);
	return rc;
}

/* ListGrants (https://docs.aws.amazon.com/kms/latest/APIReference/API_ListGrants.html). */
k_status kms_op_list_grants(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *key_id, *grant_id, *grantee, *marker;
	struct page p = {0};
	GUARD(api_string(c, in, "KeyId", true, 1, 2048, &key_id));
	GUARD(api_string(c, in, "GrantId", false, 1, 128, &grant_id));
	GUARD(api_string(c, in, "GranteePrincipal", false, 1, KMS_GRANT_PRINCIPAL_MAX, &grantee));
	GUARD(page_args(c, in, &p.limit, &marker));
	struct kms_key *k = NULL;
	GUARD(kms_op_key(c, &k));
	p.grants = json_array();
	p.grantee = grantee;
	k_status rc = kms_grants_migrate(k);
	if (k_ok(rc) && grant_id != NULL)
		rc = list_one(k, grant_id, &p);
	else if (k_ok(rc))
		/* With a grantee filter the walk goes on past non-matching records. */
		rc = kms_grants_each(k->ns, k->id, marker, grantee ? 0 : p.limit + 1, list_cb, &p);
	kms_key_unref(k);
	return page_finish(&p, rc, out);
}

struct retirable {
	struct page page;
	size_t prefix_len;
	const char *ns;
};

/* An index record: its id ends with the grant's record id, whose document is read. */
static K_MUST_CHECK k_status retirable_cb(void *arg, const char *ns, const char *id,
					  struct kslice doc, int64_t version)
{
	(void)doc;
	(void)version;
	struct retirable *r = arg;
	const char *rec = id + r->prefix_len;
	struct kbuf d;
	kbuf_init(&d, STORAGE_MAX_DOC);
	k_status rc = storage_get(kms_store(), KMS_GRANT_KIND, ns, rec, &d, NULL);
	json_t *j = k_ok(rc) ? json_loadb((const char *)d.ptr, d.len, 0, NULL) : NULL;
	kbuf_release(&d);
	if (k_is(rc, K_E_NOT_FOUND))
		return K_OK; /* deleted since the index was read */
	GUARD(rc);
	ENSURE(j != NULL, K_E_INTERNAL);
	rc = page_add(&r->page, rec, grant_entry(j));
	json_decref(j);
	return rc;
}

/*
 * ListRetirableGrants (https://docs.aws.amazon.com/kms/latest/APIReference/API_ListRetirableGrants.html):
 * the grants, on the keys of the caller's account and Region, whose
 * RetiringPrincipal is the given principal, read from the retiree index.
 */
k_status kms_op_list_retirable_grants(struct api_ctx *c, json_t *in, json_t *out)
{
	const char *principal, *marker;
	struct retirable r = {.ns = c->ns};
	GUARD(api_string(c, in, "RetiringPrincipal", true, 1, KMS_GRANT_PRINCIPAL_MAX, &principal));
	GUARD(page_args(c, in, &r.page.limit, &marker));
	if (!kms_valid_grant_principal(principal))
		return api_fail(c, K_E_INVALID_ARN, "Invalid principal: %.256s", principal);
	char prefix[4 + KMS_GRANT_PRINCIPAL_MAX], after[KMS_GRANT_RETIREE_ID_BUF];
	kms_grant_retiree_prefix(principal, prefix, sizeof prefix);
	r.prefix_len = strlen(prefix);
	snprintf(after, sizeof after, "%s%s", prefix, marker ? marker : "");
	r.page.grants = json_array();
	ENSURE(r.page.grants != NULL, K_E_INTERNAL);
	k_status rc = storage_list(kms_store(), KMS_GRANT_RETIREE_KIND, c->ns, prefix,
				   marker ? after : NULL, r.page.limit + 1, retirable_cb, &r);
	return page_finish(&r.page, rc, out);
}
