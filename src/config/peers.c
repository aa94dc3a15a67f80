/*
 * peers.c — the "peers" section of the configuration (see peers.h).
 */
#include "config/peers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/regions.h"
#include "core/log.h"
#include "crypto/peerwrap.h"
#include "core/banned.h"

static struct {
	bool present;
	size_t n;
	struct config_peer peers[CONFIG_PEERS_MAX];
	size_t n_accept;
	char accept[CONFIG_PEERS_MAX_ACCEPT][256];
} section;

size_t config_peer_count(void)
{
	return section.n;
}

const struct config_peer *config_peer_at(size_t i)
{
	return i < section.n ? &section.peers[i] : NULL;
}

const struct config_peer *config_peer_for_region(const char *region)
{
	for (size_t i = 0; region != NULL && i < section.n; i++) {
		if (strcmp(section.peers[i].region, region) == 0)
			return &section.peers[i];
	}
	return NULL;
}

bool config_peer_accepts(const char *principal_arn)
{
	for (size_t i = 0; principal_arn != NULL && i < section.n_accept; i++) {
		if (strcmp(section.accept[i], principal_arn) == 0)
			return true;
	}
	return false;
}

bool config_peers_present(void)
{
	return section.present;
}

void config_peers_release(void)
{
	for (size_t i = 0; i < section.n; i++) {
		ksecret_free(section.peers[i].secret);
		kbuf_release(&section.peers[i].public_pem);
	}
	memset(&section, 0, sizeof section);
}

/* A path member, relative to the configuration file's folder unless absolute. */
static K_MUST_CHECK k_status peer_path(const char *s, const char *cfg_path, char *dst, size_t n)
{
	const char *slash = strrchr(cfg_path, '/');
	int w = s[0] == '/' || slash == NULL
			? snprintf(dst, n, "%s", s)
			: snprintf(dst, n, "%.*s/%s", (int)(slash - cfg_path), cfg_path, s);
	return w >= 0 && (size_t)w < n ? K_OK : K_E_VALIDATION;
}

/* The pinned public key: the file's PEM text, checked. */
static K_MUST_CHECK k_status read_pem(const char *path, struct kbuf *out)
{
	FILE *f = fopen(path, "rb");
	ENSURE(f != NULL, K_E_VALIDATION);
	char chunk[1024];
	size_t got;
	k_status rc = K_OK;
	while (k_ok(rc) && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
		rc = kbuf_append(out, chunk, got);
	fclose(f);
	GUARD(rc);
	return crypto_peer_pem_check(kbuf_slice(out));
}

/* The secret access key, from a file or an environment variable. */
static struct ksecret *read_secret(json_t *e, const char *cfg_path)
{
	const char *file = json_string_value(json_object_get(e, "secret_access_key_file"));
	const char *env = json_string_value(json_object_get(e, "secret_access_key_env"));
	char path[CONFIG_PEER_MAX_PATH];
	if (file != NULL && env == NULL && k_ok(peer_path(file, cfg_path, path, sizeof path)))
		return ksecret_read_file(path, CONFIG_PEER_MAX_SECRET);
	const char *v = env != NULL && file == NULL ? getenv(env) : NULL;
	if (v == NULL || v[0] == 0 || strlen(v) > CONFIG_PEER_MAX_SECRET)
		return NULL;
	return ksecret_from((const uint8_t *)v, strlen(v));
}

static K_MUST_CHECK k_status bad(struct kbuf *msg, size_t i, const char *why)
{
	kbuf_note(msg, "peers.regions[%zu]: %s", i, why);
	return K_E_VALIDATION;
}

/* One entry of "regions". */
static K_MUST_CHECK k_status load_peer(json_t *e, size_t i, const char *cfg_path, struct kbuf *msg)
{
	const char *region = json_string_value(json_object_get(e, "region"));
	const char *endpoint = json_string_value(json_object_get(e, "endpoint"));
	const char *ca = json_string_value(json_object_get(e, "ca_file"));
	const char *akid = json_string_value(json_object_get(e, "access_key_id"));
	const char *pub = json_string_value(json_object_get(e, "public_key_file"));
	struct config_peer *p = &section.peers[section.n];
	if (region == NULL || !config_region_known(region))
		return bad(msg, i, "\"region\" must name a Region kinko serves");
	if (config_peer_for_region(region) != NULL)
		return bad(msg, i, "the Region is named twice");
	if (endpoint == NULL || strncmp(endpoint, "https://", 8) != 0 ||
	    strlen(endpoint) >= sizeof p->endpoint)
		return bad(msg, i, "\"endpoint\" must be an https:// URL");
	if (akid == NULL || akid[0] == 0 || strlen(akid) >= sizeof p->access_key_id)
		return bad(msg, i, "\"access_key_id\" is required");
	if (ca != NULL && k_failed(peer_path(ca, cfg_path, p->ca_file, sizeof p->ca_file)))
		return bad(msg, i, "\"ca_file\" is too long");
	char path[CONFIG_PEER_MAX_PATH];
	kbuf_init(&p->public_pem, CRYPTO_PEER_MAX_PEM);
	section.n++; /* from here on, released with the section */
	if (pub == NULL || k_failed(peer_path(pub, cfg_path, path, sizeof path)) ||
	    k_failed(read_pem(path, &p->public_pem)) ||
	    k_failed(crypto_peer_fingerprint(kbuf_slice(&p->public_pem), p->fingerprint)))
		return bad(msg, i,
			   "\"public_key_file\" must be the peer's wrapping key (an RSA public "
			   "key of at least 2048 bits, PEM; `kinko peer wrapping-key` prints it)");
	p->secret = read_secret(e, cfg_path);
	if (p->secret == NULL)
		return bad(msg, i,
			   "the secret access key must come from \"secret_access_key_file\" (a "
			   "readable file) or \"secret_access_key_env\" (a set variable), one of "
			   "the two");
	kstr_copy(p->region, sizeof p->region, region);
	kstr_copy(p->endpoint, sizeof p->endpoint, endpoint);
	kstr_copy(p->access_key_id, sizeof p->access_key_id, akid);
	LOG_INFO("config: Region %s is served by the peer %s (wrapping key sha256 %s)", region,
		 endpoint, p->fingerprint);
	return K_OK;
}

static K_MUST_CHECK k_status load_accept(json_t *list, struct kbuf *msg)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
	{
		const char *arn = json_string_value(v);
		if (section.n_accept == CONFIG_PEERS_MAX_ACCEPT || arn == NULL ||
		    strncmp(arn, "arn:", 4) != 0 || strlen(arn) >= sizeof section.accept[0]) {
			kbuf_note(msg, "peers.accept[%zu] must be a principal ARN (at most %d)", i,
				  CONFIG_PEERS_MAX_ACCEPT);
			return K_E_VALIDATION;
		}
		kstr_copy(section.accept[section.n_accept++], sizeof section.accept[0], arn);
	}
	return K_OK;
}

k_status config_peers_load(json_t *sec, const char *cfg_path, struct kbuf *msg)
{
	config_peers_release();
	if (sec == NULL)
		return K_OK;
	section.present = true;
	k_status rc = load_accept(json_object_get(sec, "accept"), msg);
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(sec, "regions"), i, e)
	{
		if (k_ok(rc) && section.n == CONFIG_PEERS_MAX)
			rc = bad(msg, i, "too many peer Regions");
		if (k_ok(rc))
			rc = load_peer(e, i, cfg_path, msg);
	}
	if (k_failed(rc))
		config_peers_release();
	return rc;
}
