/*
 * kms_json_fuzz.c — the JSON request of every KMS operation, straight into
 * its handler with a fixed principal (the dev account's root, us-east-1).
 *
 * Input: the operation name ("Encrypt"), LF, then the JSON body with the
 * @key/@arn/@blob placeholders of support.h. A name with a dot is a whole
 * X-Amz-Target of another JSON service on the same endpoint
 * ("secretsmanager.CreateSecret"), so Secrets Manager's operations are
 * fuzzed here too. The operation is looked up in
 * the registered table, so each operation group that lands is fuzzed by
 * this same harness once it is registered (and its name added to the seed
 * corpus and the dictionary). A body that is not a JSON object is dropped
 * here, as the dispatcher refuses it before any handler runs.
 */
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "audit/audit.h"
#include "core/json.h"
#include "core/jsonw.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > API_MAX_BODY)
		return 0;
	fuzz_kms_init();
	fuzz_bound_cache();
	const uint8_t *lf = memchr(data, '\n', size);
	if (lf == NULL || (size_t)(lf - data) > 64)
		return 0;
	char target[96];
	size_t nl = (size_t)(lf - data);
	size_t pl = memchr(data, '.', nl) ? 0 : 13;
	memcpy(target, "TrentService.", pl);
	memcpy(target + pl, data, nl);
	target[pl + nl] = 0;
	const struct api_service *svc = NULL;
	const struct api_operation *op = api_find_operation(target, &svc);
	if (op == NULL)
		return 0;

	struct kbuf body;
	kbuf_init(&body, 2 * size + 4096);
	struct api_request r;
	api_request_init(&r);
	struct api_ctx c;
	fuzz_ctx_init(&c, &r);
	c.service = svc;
	c.op = op;
	json_t *in = NULL, *out = NULL;
	size_t off = (size_t)(lf - data) + 1;
	if (k_failed(fuzz_expand(kslice_make(data + off, size - off), &body)))
		goto out;
	json_error_t err;
	in = json_loadb((const char *)body.ptr, body.len, JSON_REJECT_DUPLICATES, &err);
	if (in == NULL || !json_is_object(in))
		goto out;
	out = json_object();
	if (out == NULL)
		goto out;
	k_status rc = api_call(&c, in, out);
	/* The response must serialize; an error must be one the table knows. */
	if (k_ok(rc)) {
		char *s = json_dumps(out, JSON_COMPACT);
		if (s == NULL)
			abort();
		kjson_free(s);
		/* The response writer (core/jsonw) must give JSON that reads back the same. */
		struct kbuf resp;
		kbuf_init(&resp, 8u << 20);
		struct kjw w;
		kjw_start(&w, &resp);
		kjw_value(&w, out);
		if (k_failed(kjw_finish(&w)))
			abort();
		json_t *back = json_loadb((const char *)resp.ptr, resp.len, 0, NULL);
		if (back == NULL || !json_equal(back, out))
			abort();
		json_decref(back);
		kbuf_release(&resp);
	} else if (k_status_name(rc)[0] == 0 || k_status_http(rc) < 400) {
		abort();
	}
	/*
	 * The call's audit event (audit/format.c) must be one line of valid
	 * JSON whatever the request held, and must carry none of its
	 * sensitive members.
	 */
	struct kbuf ev;
	kbuf_init(&ev, 16u << 20);
	char event_id[37];
	struct audit_resources res;
	struct audit_call_info info;
	api_audit_info(&c, &info);
	if (k_ok(audit_format_call(&info, in, out, rc, NULL, event_id, &res, &ev))) {
		json_t *e = json_loadb((const char *)ev.ptr, ev.len, 0, NULL);
		if (e == NULL || memchr(ev.ptr, '\n', ev.len) != NULL)
			abort();
		json_t *rp = json_object_get(e, "requestParameters");
		if (json_object_get(rp, "plaintext") != NULL ||
		    json_object_get(rp, "secretString") != NULL ||
		    json_object_get(rp, "secretBinary") != NULL)
			abort();
		json_decref(e);
	}
	kbuf_release(&ev);
out:
	json_decref(in);
	json_decref(out);
	fuzz_ctx_release(&c);
	api_request_release(&r);
	kbuf_release(&body);
	return 0;
}
