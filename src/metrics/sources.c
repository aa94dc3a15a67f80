/*
 * sources.c — gauges computed from the store when /metrics is scraped:
 * KMS keys per state and spec, and secrets. A scrape reads every key and
 * secret document once; scrape intervals of seconds make that cheap next
 * to the request traffic, and it keeps the request path free of gauges.
 */
#include "metrics/metrics.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "storage/storage.h"
#include "core/banned.h"

#define MAX_COMBOS 128

struct key_count {
	char state[32];
	char spec[32];
	uint64_t n;
};

struct key_walk {
	struct key_count c[MAX_COMBOS];
	size_t n;
};

static K_MUST_CHECK k_status key_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				    int64_t version)
{
	(void)id;
	(void)version;
	struct key_walk *w = arg;
	json_t *d = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	const char *state = json_string_value(json_object_get(d, "KeyState"));
	const char *spec = json_string_value(json_object_get(d, "KeySpec"));
	if (state == NULL)
		state = "Unknown";
	if (spec == NULL)
		spec = "Unknown";
	size_t i = 0;
	while (i < w->n && (strcmp(w->c[i].state, state) != 0 || strcmp(w->c[i].spec, spec) != 0))
		i++;
	if (i == w->n && w->n < MAX_COMBOS) {
		snprintf(w->c[i].state, sizeof w->c[i].state, "%s", state);
		snprintf(w->c[i].spec, sizeof w->c[i].spec, "%s", spec);
		w->c[i].n = 0;
		w->n++;
	}
	if (i < w->n)
		w->c[i].n++;
	json_decref(d);
	return K_OK;
}

static K_MUST_CHECK k_status count_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				      int64_t version)
{
	(void)id;
	(void)doc;
	(void)version;
	(*(uint64_t *)arg)++;
	return K_OK;
}

/* The store metrics_register_store_gauges was given. */
static struct storage *store;

static void keys_source(struct kbuf *b)
{
	struct storage *st = store;
	if (st == NULL)
		return;
	struct key_walk w;
	w.n = 0;
	if (k_failed(storage_list(st, "key", NULL, NULL, NULL, 0, key_cb, &w)))
		return;
	kbuf_note(b, "# HELP kinko_keys KMS keys by key state and key spec.\n"
		     "# TYPE kinko_keys gauge\n");
	for (size_t i = 0; i < w.n; i++)
		kbuf_note(b, "kinko_keys{state=\"%s\",spec=\"%s\"} %llu\n", w.c[i].state,
			  w.c[i].spec, (unsigned long long)w.c[i].n);
	uint64_t secrets = 0;
	if (k_ok(storage_list(st, "secret", NULL, NULL, NULL, 0, count_cb, &secrets)))
		kbuf_note(b,
			  "# HELP kinko_secrets Secrets Manager secrets.\n"
			  "# TYPE kinko_secrets gauge\n"
			  "kinko_secrets %llu\n",
			  (unsigned long long)secrets);
}

void metrics_register_store_gauges(struct storage *st)
{
	store = st;
	metrics_add_source(keys_source);
}
