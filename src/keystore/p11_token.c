/*
 * p11_token.c — PKCS#11 tokens: the declared tokens, loading their module
 * (dlopen; kinko has no link-time dependency on any module), logging in
 * and out, and the pool of sessions the key operations draw from.
 */
#include "keystore/p11_internal.h"

#include <ctype.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/lock.h"
#include "core/secret.h"
#include "keystore/keystore.h"
#include "core/banned.h"

static struct p11_token *tokens[P11_MAX_TOKENS];
static size_t n_tokens;

bool keystore_p11_id_valid(const char *id)
{
	static const char prefix[] = "cluster-";
	if (id == NULL || strlen(id) != P11_CLUSTER_ID_LEN || strncmp(id, prefix, 8) != 0)
		return false;
	for (const char *p = id + 8; *p != 0; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '2' && *p <= '7')))
			return false;
	return true;
}

struct p11_token *p11_token_find(const char *id)
{
	for (size_t i = 0; id != NULL && i < n_tokens; i++)
		if (strcmp(tokens[i]->id, id) == 0)
			return tokens[i];
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

void p11_token_free(struct p11_token *t)
{
	if (t == NULL)
		return;
	free(t->module_path);
	free(t->label);
	free(t->anchor);
	pthread_rwlock_destroy(&t->use);
	pthread_mutex_destroy(&t->pool_mu);
	free(t);
}

struct p11_token *p11_token_new(const struct p11_token_config *cfg)
{
	struct p11_token *t = calloc(1, sizeof *t);
	if (t == NULL)
		return NULL;
	kstr_copy(t->id, sizeof t->id, cfg->id);
	t->module_path = strdup(cfg->module);
	t->label = dup_or_null(cfg->label);
	t->anchor = strdup(cfg->trust_anchor != NULL ? cfg->trust_anchor : "");
	t->slot = cfg->slot;
	pthread_rwlock_init(&t->use, NULL);
	pthread_mutex_init(&t->pool_mu, NULL);
	atomic_init(&t->state, P11_DISCONNECTED);
	atomic_init(&t->why, P11_ERR_NONE);
	if (t->module_path == NULL || t->anchor == NULL ||
	    (cfg->label != NULL && t->label == NULL)) {
		p11_token_free(t);
		return NULL;
	}
	return t;
}

k_status keystore_p11_add_token(const struct p11_token_config *cfg)
{
	if (!keystore_p11_id_valid(cfg->id) || cfg->module == NULL || cfg->trust_anchor == NULL)
		return K_E_VALIDATION;
	if (p11_token_find(cfg->id) != NULL)
		return K_E_ALREADY_EXISTS;
	if (n_tokens == P11_MAX_TOKENS)
		return K_E_LIMIT_EXCEEDED;
	struct p11_token *t = p11_token_new(cfg);
	if (t == NULL)
		return K_E_INTERNAL;
	tokens[n_tokens++] = t;
	return K_OK;
}

void keystore_p11_release_all(void)
{
	for (size_t i = 0; i < n_tokens; i++)
		keystore_p11_disconnect(tokens[i]->id);
	for (size_t i = 0; i < n_tokens; i++) {
		p11_token_free(tokens[i]);
		tokens[i] = NULL;
	}
	n_tokens = 0;
}

size_t keystore_p11_token_count(void)
{
	return n_tokens;
}

const char *keystore_p11_token_id(size_t i)
{
	return i < n_tokens ? tokens[i]->id : NULL;
}

bool keystore_p11_token_known(const char *id)
{
	return p11_token_find(id) != NULL;
}

/* Equal once every white-space character is left out of both. */
static bool same_without_space(const char *a, const char *b)
{
	for (;;) {
		while (*a != 0 && isspace((unsigned char)*a))
			a++;
		while (*b != 0 && isspace((unsigned char)*b))
			b++;
		if (*a != *b)
			return false;
		if (*a == 0)
			return true;
		a++;
		b++;
	}
}

k_status keystore_p11_trust_anchor_matches(const char *id, const char *pem)
{
	struct p11_token *t = p11_token_find(id);
	if (t == NULL)
		return K_E_NOT_FOUND;
	return pem != NULL && same_without_space(t->anchor, pem) ? K_OK : K_E_VALIDATION;
}

const char *keystore_p11_error_name(enum p11_conn_error e)
{
	switch (e) {
	case P11_ERR_CLUSTER_NOT_FOUND:
		return "CLUSTER_NOT_FOUND";
	case P11_ERR_INVALID_CREDENTIALS:
		return "INVALID_CREDENTIALS";
	case P11_ERR_USER_LOCKED_OUT:
		return "USER_LOCKED_OUT";
	case P11_ERR_NETWORK_ERRORS:
		return "NETWORK_ERRORS";
	case P11_ERR_INTERNAL_ERROR:
		return "INTERNAL_ERROR";
	default:
		return NULL;
	}
}

enum p11_state keystore_p11_state(const char *id, enum p11_conn_error *why)
{
	struct p11_token *t = p11_token_find(id);
	if (t == NULL)
		return P11_DISCONNECTED;
	if (why != NULL)
		*why = (enum p11_conn_error)atomic_load(&t->why);
	return (enum p11_state)atomic_load(&t->state);
}

/* ---- the module ------------------------------------------------------------ */

/*
 * Modules: one per path, shared by the tokens it serves. C_Initialize and
 * C_Finalize act on the whole process, so a module is initialized for its
 * first connected token and finalized after its last one.
 */
struct p11_module {
	char *path;
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	int users;
};
static struct p11_module modules[P11_MAX_TOKENS];
static pthread_mutex_t modules_mu = PTHREAD_MUTEX_INITIALIZER;

static struct p11_module *module_slot(const char *path)
{
	struct p11_module *free_slot = NULL;
	for (size_t i = 0; i < P11_MAX_TOKENS; i++) {
		if (modules[i].path != NULL && strcmp(modules[i].path, path) == 0)
			return &modules[i];
		if (modules[i].path == NULL && free_slot == NULL)
			free_slot = &modules[i];
	}
	if (free_slot != NULL)
		free_slot->path = strdup(path);
	return free_slot != NULL && free_slot->path != NULL ? free_slot : NULL;
}

/* dlopen and C_Initialize; false (and a log line) if either fails. */
static bool module_start(struct p11_module *m, const char *token)
{
	m->dl = dlopen(m->path, RTLD_NOW | RTLD_LOCAL);
	if (m->dl == NULL) {
		LOG_WARN("token %s: cannot load the module %s: %s", token, m->path, dlerror());
		return false;
	}
	CK_C_GetFunctionList get = NULL;
	void *sym = dlsym(m->dl, "C_GetFunctionList");
	memcpy(&get, &sym, sizeof get);
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	CK_RV rv = get != NULL ? get(&m->f) : CKR_GENERAL_ERROR;
	if (rv == CKR_OK)
		rv = m->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		LOG_WARN("token %s: the module %s does not initialize (0x%lx)", token, m->path,
			 (unsigned long)rv);
		dlclose(m->dl);
		m->dl = NULL;
		m->f = NULL;
		return false;
	}
	return true;
}

/* Takes the token's module, starting it if no token uses it. Holds `use` for writing. */
static K_MUST_CHECK k_status module_load(struct p11_token *t, enum p11_conn_error *why)
{
	*why = P11_ERR_CLUSTER_NOT_FOUND; /* SoftHSM2 fails to start when its folder is gone */
	klock(&modules_mu);
	struct p11_module *m = module_slot(t->module_path);
	bool ok = m != NULL && (m->users > 0 || module_start(m, t->id));
	if (ok) {
		m->users++;
		t->f = m->f;
	}
	pthread_mutex_unlock(&modules_mu);
	return ok ? K_OK : K_E_INVALID_STATE;
}

/* Lets the token's module go; the last token finalizes it. */
static void module_unload(struct p11_token *t)
{
	if (t->f == NULL)
		return;
	klock(&modules_mu);
	struct p11_module *m = module_slot(t->module_path);
	if (m != NULL && m->users > 0 && --m->users == 0) {
		(void)m->f->C_Finalize(NULL);
		dlclose(m->dl);
		m->dl = NULL;
		m->f = NULL;
	}
	pthread_mutex_unlock(&modules_mu);
	t->f = NULL;
}

/* A space-padded PKCS#11 label equals `want`. */
static bool label_is(const unsigned char label[32], const char *want)
{
	size_t n = strlen(want);
	if (n > 32 || memcmp(label, want, n) != 0)
		return false;
	for (size_t i = n; i < 32; i++)
		if (label[i] != ' ')
			return false;
	return true;
}

#define P11_MAX_SLOTS 64

/* The slot holding the configured token. */
static K_MUST_CHECK k_status find_slot(struct p11_token *t)
{
	CK_SLOT_ID slots[P11_MAX_SLOTS];
	CK_ULONG n = P11_MAX_SLOTS;
	if (t->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return K_E_NOT_FOUND;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO info;
		if (t->f->C_GetTokenInfo(slots[i], &info) != CKR_OK)
			continue;
		bool match = t->label != NULL ? label_is(info.label, t->label)
					      : (long)slots[i] == t->slot;
		if (match && (info.flags & CKF_TOKEN_INITIALIZED) != 0) {
			t->slot_id = slots[i];
			return K_OK;
		}
	}
	return K_E_NOT_FOUND;
}

static enum p11_conn_error login_error(CK_RV rv)
{
	switch (rv) {
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
		return P11_ERR_INVALID_CREDENTIALS;
	case CKR_PIN_LOCKED:
		return P11_ERR_USER_LOCKED_OUT;
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_DEVICE_REMOVED:
	case CKR_SLOT_ID_INVALID:
		return P11_ERR_CLUSTER_NOT_FOUND;
	default:
		return P11_ERR_INTERNAL_ERROR;
	}
}

/* Closes every session, logs out, unloads. Holds `use` for writing. */
static void teardown(struct p11_token *t)
{
	if (t->f != NULL) {
		(void)t->f->C_Logout(t->login);
		(void)t->f->C_CloseAllSessions(t->slot_id);
	}
	klock(&t->pool_mu);
	t->n_idle = 0;
	pthread_mutex_unlock(&t->pool_mu);
	module_unload(t);
}

static K_MUST_CHECK k_status connect_locked(struct p11_token *t, struct kslice pin,
					    enum p11_conn_error *why)
{
	GUARD(module_load(t, why));
	if (k_failed(find_slot(t))) {
		LOG_WARN("token %s: the module has no token %s", t->id,
			 t->label != NULL ? t->label : "in that slot");
		*why = P11_ERR_CLUSTER_NOT_FOUND;
		module_unload(t);
		return K_E_INVALID_STATE;
	}
	CK_RV rv = t->f->C_OpenSession(t->slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
				       &t->login);
	if (rv == CKR_OK)
		rv = t->f->C_Login(t->login, CKU_USER, (CK_UTF8CHAR_PTR)(uintptr_t)pin.ptr,
				   (CK_ULONG)pin.len);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		*why = login_error(rv);
		LOG_WARN("token %s: login refused (%s)", t->id, keystore_p11_error_name(*why));
		teardown(t);
		return K_E_INVALID_STATE;
	}
	*why = P11_ERR_NONE;
	return K_OK;
}

k_status p11_token_connect(struct p11_token *t, struct kslice pin, enum p11_conn_error *why)
{
	pthread_rwlock_wrlock(&t->use);
	k_status rc = K_OK;
	if (atomic_load(&t->state) != P11_CONNECTED) {
		if (t->f != NULL) /* a token that failed: start afresh */
			teardown(t);
		rc = connect_locked(t, pin, why);
		atomic_store(&t->why, (int)(k_ok(rc) ? P11_ERR_NONE : *why));
		atomic_store(&t->state, k_ok(rc) ? P11_CONNECTED : P11_FAILED);
	} else {
		*why = P11_ERR_NONE;
	}
	pthread_rwlock_unlock(&t->use);
	if (k_ok(rc))
		LOG_INFO("token %s connected", t->id);
	return rc;
}

k_status keystore_p11_connect(const char *id, struct kslice pin, enum p11_conn_error *why)
{
	struct p11_token *t = p11_token_find(id);
	*why = P11_ERR_CLUSTER_NOT_FOUND;
	if (t == NULL)
		return K_E_INVALID_STATE;
	return p11_token_connect(t, pin, why);
}

k_status keystore_p11_connect_wrapped(const char *id, struct kslice aad, const char *wrapped,
				      enum p11_conn_error *why)
{
	struct kbuf raw;
	kbuf_init(&raw, KEYSTORE_MAX_REF);
	struct ksecret *pin = NULL;
	k_status rc = kbuf_decode_base64(&raw, kslice_cstr(wrapped));
	if (k_ok(rc))
		rc = keystore_unwrap(aad, kbuf_slice(&raw), &pin);
	kbuf_release(&raw);
	if (k_failed(rc)) {
		*why = P11_ERR_INTERNAL_ERROR;
		LOG_ERROR("token %s: the stored PIN does not unwrap", id);
		return K_E_INTERNAL;
	}
	rc = keystore_p11_connect(id, kslice_make(ksecret_cbytes(pin), ksecret_len(pin)), why);
	ksecret_free(pin);
	return rc;
}

void p11_token_disconnect(struct p11_token *t)
{
	pthread_rwlock_wrlock(&t->use);
	if (t->f != NULL)
		teardown(t);
	atomic_store(&t->state, P11_DISCONNECTED);
	atomic_store(&t->why, (int)P11_ERR_NONE);
	pthread_rwlock_unlock(&t->use);
}

void keystore_p11_disconnect(const char *id)
{
	struct p11_token *t = p11_token_find(id);
	if (t != NULL)
		p11_token_disconnect(t);
}

/* ---- sessions ---------------------------------------------------------------- */

k_status p11_take(struct p11_token *t, CK_SESSION_HANDLE *s)
{
	pthread_rwlock_rdlock(&t->use);
	if (atomic_load(&t->state) != P11_CONNECTED || t->f == NULL) {
		pthread_rwlock_unlock(&t->use);
		return K_E_INVALID_STATE;
	}
	klock(&t->pool_mu);
	bool have = t->n_idle > 0;
	if (have)
		*s = t->idle[--t->n_idle];
	pthread_mutex_unlock(&t->pool_mu);
	if (have)
		return K_OK;
	CK_RV rv =
		t->f->C_OpenSession(t->slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s);
	if (rv != CKR_OK) {
		pthread_rwlock_unlock(&t->use);
		p11_mark_lost(t, rv);
		return K_E_INVALID_STATE;
	}
	return K_OK;
}

void p11_put(struct p11_token *t, CK_SESSION_HANDLE s, bool broken)
{
	bool keep = false;
	if (!broken) {
		klock(&t->pool_mu);
		keep = t->n_idle < P11_POOL_MAX;
		if (keep)
			t->idle[t->n_idle++] = s;
		pthread_mutex_unlock(&t->pool_mu);
	}
	if (!keep)
		(void)t->f->C_CloseSession(s);
	pthread_rwlock_unlock(&t->use);
}

bool p11_rv_lost(CK_RV rv)
{
	switch (rv) {
	case CKR_DEVICE_ERROR:
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_SLOT_ID_INVALID:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_KEY_HANDLE_INVALID:
		return true;
	default:
		return false;
	}
}

void p11_mark_lost(struct p11_token *t, CK_RV rv)
{
	int expect = P11_CONNECTED;
	if (atomic_compare_exchange_strong(&t->state, &expect, P11_FAILED)) {
		atomic_store(&t->why, (int)P11_ERR_NETWORK_ERRORS);
		LOG_ERROR("token %s went away (0x%lx): its keys are unavailable until it is "
			  "connected again",
			  t->id, (unsigned long)rv);
	}
}

bool keystore_p11_probe(const char *id)
{
	struct p11_token *t = p11_token_find(id);
	CK_SESSION_HANDLE s;
	if (t == NULL || k_failed(p11_take(t, &s)))
		return false;
	CK_SESSION_INFO info;
	CK_RV rv = t->f->C_GetSessionInfo(s, &info);
	bool lost = p11_rv_lost(rv);
	p11_put(t, s, lost);
	if (lost)
		p11_mark_lost(t, rv);
	return rv == CKR_OK;
}
