/*
 * usage.c — `kinko usage`: requests per key and per account over a
 * period, read from the audit log, and what the same use would cost on
 * AWS at list prices (https://aws.amazon.com/kms/pricing/,
 * https://aws.amazon.com/secrets-manager/pricing/):
 *   KMS key            $1.00 per key-month, prorated hourly (730 h a month)
 *   KMS requests       $0.03 per 10,000 (symmetric, and RSA_2048 keys)
 *   asymmetric         $0.15 per 10,000 requests with other asymmetric keys
 *   GenerateDataKeyPair  $0.10 per 10,000 (ECC pairs), $12.00 per 10,000 (RSA pairs)
 *   secret             $0.40 per secret-month; $0.05 per 10,000 API calls
 * The free tier (20,000 KMS requests a month) and AWS managed keys' free
 * storage are not subtracted. A key exists from its CreateKey event (or
 * the start of the period, and no earlier than the log's first event) to
 * its DeleteKey event (or the end). A resource named only by failed calls
 * (a key id that does not exist, say) has requests but no key-months.
 */
#include "audit/audit.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "audit/internal.h"
#include "core/json.h"
#include "core/banned.h"

#define MONTH_SECONDS (730.0 * 3600.0)

struct prices {
	double key_month, req, asym_req, ecc_pair, rsa_pair, secret_month, secret_req;
};

static const struct prices aws_prices = {1.00, 0.03, 0.15, 0.10, 12.00, 0.40, 0.05};

static const struct {
	const char *name;
	size_t off;
} price_names[] = {
	{"kmsKeyMonth", offsetof(struct prices, key_month)},
	{"kmsRequestsPer10k", offsetof(struct prices, req)},
	{"kmsAsymmetricRequestsPer10k", offsetof(struct prices, asym_req)},
	{"kmsEccDataKeyPairPer10k", offsetof(struct prices, ecc_pair)},
	{"kmsRsaDataKeyPairPer10k", offsetof(struct prices, rsa_pair)},
	{"secretMonth", offsetof(struct prices, secret_month)},
	{"secretsRequestsPer10k", offsetof(struct prices, secret_req)},
};
#define N_PRICES (sizeof price_names / sizeof price_names[0])

static double *price_at(struct prices *p, size_t i)
{
	return (double *)(void *)((char *)p + price_names[i].off);
}

static json_t *prices_json(const struct prices *p)
{
	json_t *o = json_object();
	struct prices copy = *p;
	for (size_t i = 0; i < N_PRICES; i++)
		json_object_set_new(o, price_names[i].name, json_real(*price_at(&copy, i)));
	return o;
}

void audit_usage_print_prices(FILE *out)
{
	json_t *o = prices_json(&aws_prices);
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s != NULL) {
		fprintf(out, "%s\n", s);
		kjson_free(s);
	}
	json_decref(o);
}

struct walk {
	int64_t from, to;
	int64_t first;	  /* the time of the log's first event (0: none yet) */
	json_t *accounts; /* account -> {"keys": {arn: {...}}, "secrets": {...}, "other": {op: n}} */
};

static json_t *obj_at(json_t *parent, const char *k)
{
	json_t *o = json_object_get(parent, k);
	if (o == NULL) {
		o = json_object();
		json_object_set_new(parent, k, o);
	}
	return o;
}

static void bump(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	json_object_set_new(o, k, json_integer(json_integer_value(v) + 1));
}

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool eq_event_type(json_t *e);

/* Records a resource's creation / deletion time and counts the request. */
static bool usage_cb(void *arg, uint64_t seq, const char *type, json_t *e, const char *file)
{
	(void)seq;
	(void)file;
	struct walk *w = arg;
	int64_t t;
	const char *src = str(e, "eventSource"), *name = str(e, "eventName");
	const char *acct = str(e, "recipientAccountId");
	if (strcmp(type, "event") != 0 || src == NULL || name == NULL || acct == NULL ||
	    acct[0] == 0 || str(e, "eventTime") == NULL ||
	    !audit_parse_iso8601(str(e, "eventTime"), &t))
		return true;
	if (w->first == 0 || t < w->first)
		w->first = t;
	bool kms = strcmp(src, "kms.amazonaws.com") == 0;
	bool sm = strcmp(src, "secretsmanager.amazonaws.com") == 0;
	if (!kms && !sm)
		return true;
	bool ok = json_object_get(e, "errorCode") == NULL;
	bool service_event = eq_event_type(e);
	json_t *a = obj_at(w->accounts, acct);
	json_t *res = json_array_get(json_object_get(e, "resources"), 0);
	const char *arn = str(res, "ARN");
	json_t *bucket = NULL;
	if (arn != NULL) {
		bucket = obj_at(obj_at(a, kms ? "keys" : "secrets"), arn);
		if (ok)
			json_object_set_new(bucket, "exists", json_true());
		if (ok && (strcmp(name, "CreateKey") == 0 || strcmp(name, "CreateSecret") == 0))
			json_object_set_new(bucket, "created", json_integer(t));
		if (ok && (strcmp(name, "DeleteKey") == 0 || strcmp(name, "DeleteSecret") == 0))
			json_object_set_new(bucket, "deleted", json_integer(t));
		if (ok && strcmp(name, "CreateKey") == 0) {
			const char *spec =
				str(json_object_get(json_object_get(e, "responseElements"),
						    "keyMetadata"),
				    "keySpec");
			if (spec != NULL)
				json_object_set_new(bucket, "keySpec", json_string(spec));
		}
	}
	/* Requests in the period; kinko's own service events are not billed. */
	if (service_event || t < w->from || t >= w->to)
		return true;
	json_t *counts = bucket != NULL ? obj_at(bucket, "requests")
					: obj_at(a, kms ? "otherKms" : "otherSecrets");
	bump(counts, name);
	if (kms && strncmp(name, "GenerateDataKeyPair", 19) == 0 && bucket != NULL) {
		const char *ps = str(json_object_get(e, "requestParameters"), "keyPairSpec");
		bump(obj_at(bucket, "pairs"),
		     ps != NULL && strncmp(ps, "RSA", 3) == 0 ? "rsa" : "ecc");
	}
	return true;
}

static double months(json_t *b, int64_t from, int64_t to)
{
	json_t *c = json_object_get(b, "created"), *d = json_object_get(b, "deleted");
	if (json_object_get(b, "exists") == NULL)
		return 0; /* only failed calls named it */
	int64_t s = c ? (int64_t)json_integer_value(c) : from;
	int64_t e = d ? (int64_t)json_integer_value(d) : to;
	if (s < from)
		s = from;
	if (e > to)
		e = to;
	if (e <= s)
		return 0;
	/* Prorated by started hours, as AWS bills keys. */
	return ceil((double)(e - s) / 3600.0) * 3600.0 / MONTH_SECONDS;
}

static json_int_t total_of(json_t *counts)
{
	json_int_t n = 0;
	const char *k;
	json_t *v;
	json_object_foreach(counts, k, v) n += json_integer_value(v);
	return n;
}

static bool asymmetric_spec(const char *spec)
{
	return spec != NULL && (strncmp(spec, "RSA_", 4) == 0 || strncmp(spec, "ECC_", 4) == 0) &&
	       strcmp(spec, "RSA_2048") != 0;
}

static bool eq_event_type(json_t *e)
{
	const char *t = str(e, "eventType");
	return t != NULL && strcmp(t, "AwsServiceEvent") == 0;
}

static K_MUST_CHECK k_status load_prices(const char *path, struct prices *p)
{
	*p = aws_prices;
	if (path == NULL)
		return K_OK;
	json_error_t err;
	json_t *o = json_load_file(path, 0, &err);
	if (!json_is_object(o)) {
		fprintf(stderr, "kinko usage: %s: %s\n", path, err.text);
		json_decref(o);
		return K_E_VALIDATION;
	}
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		size_t i = 0;
		while (i < N_PRICES && strcmp(price_names[i].name, k) != 0)
			i++;
		if (i == N_PRICES || !json_is_number(v) || json_number_value(v) < 0) {
			fprintf(stderr, "kinko usage: %s: unknown price or bad value: %s\n", path,
				k);
			json_decref(o);
			return K_E_VALIDATION;
		}
		*price_at(p, i) = json_number_value(v);
	}
	json_decref(o);
	return K_OK;
}

static double round6(double x)
{
	return round(x * 1e6) / 1e6;
}

/* Builds the report document from the walk. */
/* One key's line of the report: its key-months, requests and their price. */
static json_t *key_cost(const char *arn, json_t *b, const struct walk *w, const struct prices *p,
			double *cost, json_int_t *count)
{
	const char *spec = str(b, "keySpec");
	json_t *req = obj_at(b, "requests");
	json_int_t n = total_of(req);
	*count = n;
	json_t *pairs = json_object_get(b, "pairs");
	json_int_t rsa = json_integer_value(json_object_get(pairs, "rsa"));
	json_int_t ecc = json_integer_value(json_object_get(pairs, "ecc"));
	json_int_t plain = n - rsa - ecc;
	double km = months(b, w->from > w->first ? w->from : w->first, w->to);
	double rate = asymmetric_spec(spec) ? p->asym_req : p->req;
	double rc = (double)plain * rate / 10000.0 + (double)rsa * p->rsa_pair / 10000.0 +
		    (double)ecc * p->ecc_pair / 10000.0;
	double kc = km * p->key_month;
	*cost = kc + rc;
	return json_pack("{s:s,s:s,s:f,s:O,s:I,s:{s:f,s:f,s:f}}", "keyArn", arn, "keySpec",
			 spec ? spec : "SYMMETRIC_DEFAULT", "keyMonths", round6(km), "requests",
			 req, "requestCount", (json_int_t)n, "cost", "keyMonths", round6(kc),
			 "requests", round6(rc), "total", round6(kc + rc));
}

static json_t *report(const struct walk *w, const struct prices *p)
{
	json_t *r = json_object();
	char f[32], t[32];
	audit_iso8601(w->from, f);
	audit_iso8601(w->to, t);
	json_object_set_new(r, "period", json_pack("{s:s,s:s}", "from", f, "to", t));
	json_object_set_new(r, "prices", prices_json(p));
	json_t *accounts = json_array();
	json_object_set_new(r, "accounts", accounts);
	double grand = 0;
	const char *acct;
	json_t *a;
	json_object_foreach(w->accounts, acct, a)
	{
		json_t *ao = json_object();
		json_object_set_new(ao, "accountId", json_string(acct));
		double kms_cost = 0, sm_cost = 0;
		json_int_t kms_requests = 0, sm_requests = 0;
		json_t *keys = json_array();
		const char *arn;
		json_t *b;
		json_object_foreach(obj_at(a, "keys"), arn, b)
		{
			json_int_t n = 0;
			double cost = 0;
			json_array_append_new(keys, key_cost(arn, b, w, p, &cost, &n));
			kms_cost += cost;
			kms_requests += n;
		}
		json_t *other = obj_at(a, "otherKms");
		json_int_t on = total_of(other);
		kms_cost += (double)on * p->req / 10000.0;
		kms_requests += on;
		json_t *secrets = json_array();
		json_object_foreach(obj_at(a, "secrets"), arn, b)
		{
			json_t *req = obj_at(b, "requests");
			json_int_t n = total_of(req);
			double sm = months(b, w->from > w->first ? w->from : w->first, w->to);
			double c = sm * p->secret_month + (double)n * p->secret_req / 10000.0;
			json_array_append_new(secrets,
					      json_pack("{s:s,s:f,s:O,s:I,s:f}", "secretArn", arn,
							"secretMonths", round6(sm), "requests", req,
							"requestCount", (json_int_t)n, "cost",
							round6(c)));
			sm_cost += c;
			sm_requests += n;
		}
		json_t *osm = obj_at(a, "otherSecrets");
		sm_requests += total_of(osm);
		sm_cost += (double)total_of(osm) * p->secret_req / 10000.0;
		json_object_set_new(ao, "keys", keys);
		json_object_set(ao, "otherKmsRequests", other);
		json_object_set_new(ao, "secrets", secrets);
		json_object_set(ao, "otherSecretsRequests", osm);
		json_object_set_new(ao, "kmsRequests", json_integer(kms_requests));
		json_object_set_new(ao, "secretsRequests", json_integer(sm_requests));
		json_object_set_new(ao, "cost",
				    json_pack("{s:f,s:f,s:f}", "kms", round6(kms_cost),
					      "secretsManager", round6(sm_cost), "total",
					      round6(kms_cost + sm_cost)));
		grand += kms_cost + sm_cost;
		json_array_append_new(accounts, ao);
	}
	json_object_set_new(r, "totalCost", json_real(round6(grand)));
	return r;
}

static void print_text(json_t *r, FILE *out)
{
	json_t *per = json_object_get(r, "period");
	fprintf(out, "kinko usage from %s to %s (AWS list prices; free tier not subtracted)\n",
		str(per, "from"), str(per, "to"));
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(r, "accounts"), i, a)
	{
		json_t *c = json_object_get(a, "cost");
		fprintf(out,
			"\naccount %s: %lld KMS requests, %lld Secrets Manager requests, $%.6f\n",
			str(a, "accountId"),
			(long long)json_integer_value(json_object_get(a, "kmsRequests")),
			(long long)json_integer_value(json_object_get(a, "secretsRequests")),
			json_number_value(json_object_get(c, "total")));
		size_t j;
		json_t *k;
		json_array_foreach(json_object_get(a, "keys"), j, k)
		{
			fprintf(out, "  %s (%s): %.4f key-months, %lld requests, $%.6f\n",
				str(k, "keyArn"), str(k, "keySpec"),
				json_number_value(json_object_get(k, "keyMonths")),
				(long long)json_integer_value(json_object_get(k, "requestCount")),
				json_number_value(
					json_object_get(json_object_get(k, "cost"), "total")));
			const char *op;
			json_t *n;
			json_object_foreach(json_object_get(k, "requests"), op, n) fprintf(
				out, "      %-36s %lld\n", op, (long long)json_integer_value(n));
		}
		json_array_foreach(json_object_get(a, "secrets"), j, k)
		{
			fprintf(out, "  %s: %.4f secret-months, %lld requests, $%.6f\n",
				str(k, "secretArn"),
				json_number_value(json_object_get(k, "secretMonths")),
				(long long)json_integer_value(json_object_get(k, "requestCount")),
				json_number_value(json_object_get(k, "cost")));
		}
	}
	fprintf(out, "\ntotal: $%.6f\n", json_number_value(json_object_get(r, "totalCost")));
}

int audit_usage_report(const struct audit_usage_options *o, FILE *out)
{
	struct prices p;
	if (k_failed(load_prices(o->prices, &p)))
		return 1;
	struct walk w = {.from = o->from, .to = o->to, .accounts = json_object()};
	if (k_failed(audit_scan(o->dir, usage_cb, &w))) {
		fprintf(stderr, "kinko usage: cannot read the audit folder %s\n", o->dir);
		json_decref(w.accounts);
		return 1;
	}
	json_t *r = report(&w, &p);
	if (o->json) {
		char *s = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s != NULL) {
			fprintf(out, "%s\n", s);
			kjson_free(s);
		}
	} else {
		print_text(r, out);
	}
	json_decref(r);
	json_decref(w.accounts);
	return 0;
}
