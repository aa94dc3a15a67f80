/*
 * support.c — shared pieces of the fuzz harnesses (see support.h).
 */
#include "support.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/sigv4.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/secret.h"
#include "keystore/keystore.h"
#include "kms/kms.h"
#include "secrets/secrets.h"
#include "storage/storage.h"
#include "sts/sts.h"
#include "core/banned.h"

static char data_dir[128];
static char key_id[64];
static char key_arn[192];
static char blob_b64[256];
static bool ready;

/* Removes the temporary data folder (the store may still be open: unlink is fine). */
static void remove_data_dir(void)
{
	DIR *d = opendir(data_dir);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char p[512];
		snprintf(p, sizeof p, "%s/%s", data_dir, e->d_name);
		(void)unlink(p);
	}
	closedir(d);
	(void)rmdir(data_dir);
}

static void die(const char *what)
{
	fprintf(stderr, "fuzz setup failed: %s\n", what);
	abort();
}

/* Runs one KMS handler during setup; `in` is consumed. */
static json_t *setup_call(const char *op, json_t *in)
{
	char target[64];
	snprintf(target, sizeof target, "TrentService.%s", op);
	struct api_request r;
	struct api_ctx c;
	api_request_init(&r);
	fuzz_ctx_init(&c, &r);
	c.op = api_find_operation(target, &c.service);
	if (c.op == NULL)
		die(target);
	json_t *out = json_object();
	if (out == NULL || k_failed(api_call(&c, in, out)))
		die(op);
	json_decref(in);
	fuzz_ctx_release(&c);
	api_request_release(&r);
	return out;
}

void fuzz_kms_init(void)
{
	if (ready)
		return;
	kjson_init();
	klog_set_level(KLOG_ERROR);
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(data_dir, sizeof data_dir, "%s/kinko-fuzz-XXXXXX", base);
	if (mkdtemp(data_dir) == NULL)
		die("mkdtemp");
	atexit(remove_data_dir);

	char path[256];
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	snprintf(path, sizeof path, "%s/root.key", data_dir);
	if (k_failed(keystore_open_file(path, true, &msg)))
		die("root key");
	kbuf_release(&msg);
	struct storage *st = NULL;
	if (k_failed(storage_sqlite_open(data_dir, &st)))
		die("store");
	if (k_failed(kms_init(st)))
		die("kms caches");
	kbuf_init(&msg, 1024);
	if (k_failed(api_register_service(kms_service_table(), &msg)) ||
	    k_failed(api_register_service(sts_service_table(), &msg)) ||
	    k_failed(api_register_service(secrets_service_table(), &msg)))
		die("operation tables");
	kbuf_release(&msg);
	if (k_failed(secrets_init(st)))
		die("secrets manager");
	if (k_failed(config_install_dev_identity()))
		die("identity");

	json_t *out = setup_call("CreateKey", json_pack("{s:s}", "Description", "fuzz"));
	json_t *md = json_object_get(out, "KeyMetadata");
	snprintf(key_id, sizeof key_id, "%s", json_string_value(json_object_get(md, "KeyId")));
	snprintf(key_arn, sizeof key_arn, "%s", json_string_value(json_object_get(md, "Arn")));
	json_decref(out);
	out = setup_call("Encrypt", json_pack("{s:s,s:s,s:{s:s}}", "KeyId", key_id, "Plaintext",
					      "ZnV6eg==", "EncryptionContext", "k", "v"));
	const char *b = json_string_value(json_object_get(out, "CiphertextBlob"));
	if (b == NULL || strlen(b) >= sizeof blob_b64)
		die("ciphertext");
	snprintf(blob_b64, sizeof blob_b64, "%s", b);
	json_decref(out);
	ready = true;
}

void fuzz_bound_cache(void)
{
	static unsigned runs;
	if (++runs % 4096 == 0)
		kms_cache_clear();
}

k_status fuzz_expand(struct kslice in, struct kbuf *out)
{
	static const struct {
		const char *name;
		const char *value;
	} subs[] = {{"@key", key_id}, {"@arn", key_arn}, {"@blob", blob_b64}};
	size_t i = 0;
	while (i < in.len) {
		bool done = false;
		for (size_t s = 0; s < sizeof subs / sizeof subs[0] && !done; s++) {
			size_t nl = strlen(subs[s].name);
			if (in.len - i >= nl && memcmp(in.ptr + i, subs[s].name, nl) == 0) {
				GUARD(kbuf_append_str(out, subs[s].value));
				i += nl;
				done = true;
			}
		}
		if (!done) {
			GUARD(kbuf_append_byte(out, in.ptr[i]));
			i++;
		}
	}
	return K_OK;
}

void fuzz_ctx_init(struct api_ctx *c, struct api_request *r)
{
	memset(c, 0, sizeof *c);
	c->req = r;
	c->now = kclock_now();
	kbuf_init(&c->err_msg, 2048);
	const struct identity *id = NULL;
	if (k_failed(config_lookup_access_key("test", NULL, &id)))
		die("dev identity");
	identity_principal(id, "test", &c->principal);
	snprintf(c->region, sizeof c->region, "%s", FUZZ_REGION);
	snprintf(c->ns, sizeof c->ns, "%s:%s", FUZZ_ACCOUNT, FUZZ_REGION);
	snprintf(r->source_ip, sizeof r->source_ip, "127.0.0.1");
}

void fuzz_ctx_release(struct api_ctx *c)
{
	kbuf_release(&c->err_msg);
}

/* Finds the next LF at or after *pos; the line is [*pos, lf). */
static bool next_line(struct kslice in, size_t *pos, struct kslice *line)
{
	if (*pos >= in.len)
		return false;
	const uint8_t *lf = memchr(in.ptr + *pos, '\n', in.len - *pos);
	if (lf == NULL)
		return false;
	size_t end = (size_t)(lf - in.ptr);
	*line = kslice_make(in.ptr + *pos, end - *pos);
	*pos = end + 1;
	return true;
}

bool fuzz_parse_request(struct kslice in, struct api_request *r)
{
	size_t pos = 0;
	struct kslice line;
	if (!next_line(in, &pos, &line))
		return false;
	const uint8_t *sp = line.len ? memchr(line.ptr, ' ', line.len) : NULL;
	if (sp == NULL)
		return false;
	size_t ml = (size_t)(sp - line.ptr);
	r->method = kslice_make(line.ptr, ml);
	struct kslice target = kslice_make(sp + 1, line.len - ml - 1);
	const uint8_t *q = target.len ? memchr(target.ptr, '?', target.len) : NULL;
	if (q != NULL) {
		size_t pl = (size_t)(q - target.ptr);
		r->path = kslice_make(target.ptr, pl);
		r->query = kslice_make(q + 1, target.len - pl - 1);
	} else {
		r->path = target;
		r->query = kslice_make("", 0);
	}
	for (;;) {
		if (!next_line(in, &pos, &line))
			return false;
		if (line.len == 0)
			break;
		const uint8_t *colon = memchr(line.ptr, ':', line.len);
		if (colon == NULL || r->n_headers >= API_MAX_HEADERS)
			return false;
		size_t nl = (size_t)(colon - line.ptr);
		r->headers[r->n_headers].name = kslice_make(line.ptr, nl);
		r->headers[r->n_headers].value = kslice_make(colon + 1, line.len - nl - 1);
		r->n_headers++;
	}
	r->body = kslice_make(in.ptr + pos, in.len - pos);
	return true;
}

static void add_header(struct api_request *r, const char *name, const char *value)
{
	r->headers[r->n_headers].name = kslice_cstr(name);
	r->headers[r->n_headers].value = kslice_cstr(value);
	r->n_headers++;
}

bool fuzz_sign(struct api_request *r, struct fuzz_sig *store)
{
	if (r->n_headers + 3 > API_MAX_HEADERS)
		return false;
	if (api_header(r, "host") == NULL) {
		snprintf(store->host, sizeof store->host, "localhost");
		add_header(r, "Host", store->host);
	}
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(store->date, sizeof store->date, "%Y%m%dT%H%M%SZ", &tm);
	add_header(r, "X-Amz-Date", store->date);
	char scope_date[9];
	memcpy(scope_date, store->date, 8);
	scope_date[8] = 0;

	char signed_headers[64];
	snprintf(signed_headers, sizeof signed_headers, "%shost;x-amz-date%s",
		 api_header(r, "content-type") ? "content-type;" : "",
		 api_header(r, "x-amz-target") ? ";x-amz-target" : "");
	struct sigv4_request sr = {
		.method = r->method,
		.path = r->path,
		.query = r->query,
		.headers = r->headers,
		.n_headers = r->n_headers,
		.payload = r->body,
	};
	struct kbuf creq, sts;
	kbuf_init(&creq, SIGV4_MAX_CANONICAL_REQUEST);
	kbuf_init(&sts, 1024);
	uint8_t sig[32];
	bool ok = false;
	struct ksecret *secret = ksecret_from((const uint8_t *)"test", 4);
	if (secret != NULL &&
	    k_ok(sigv4_canonical_request(&sr, kslice_cstr(signed_headers), &creq)) &&
	    k_ok(sigv4_string_to_sign(store->date, scope_date, FUZZ_REGION, "kms",
				      kbuf_slice(&creq), &sts)) &&
	    k_ok(sigv4_sign(secret, scope_date, FUZZ_REGION, "kms", kbuf_slice(&sts), sig))) {
		char hex[65];
		for (int i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", sig[i]);
		int n = snprintf(store->authz, sizeof store->authz,
				 "AWS4-HMAC-SHA256 Credential=test/%s/%s/kms/aws4_request, "
				 "SignedHeaders=%s, Signature=%s",
				 scope_date, FUZZ_REGION, signed_headers, hex);
		if (n > 0 && (size_t)n < sizeof store->authz) {
			add_header(r, "Authorization", store->authz);
			ok = true;
		}
	}
	ksecret_free(secret);
	kbuf_release(&creq);
	kbuf_release(&sts);
	return ok;
}
