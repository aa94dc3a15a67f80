/*
 * api.h — one API request as it moves through kinko, and the operation table.
 *
 * The HTTP layer fills a struct api_request (raw method, path, query,
 * headers and body) and calls api_handle(). api_handle() runs, in this
 * order and for every operation alike:
 *   1. the service from X-Amz-Target (or the query protocol's Action);
 *   2. SigV4 authentication (auth/sigv4 + config identities);
 *   3. the operation from the service's table (api_operation rows);
 *   4. the JSON body (bounded by the operation's body limit);
 *   5. the handler, which validates its members, resolves and authorizes
 *      its resource, acts, and fills the output object;
 *   6. the response: output JSON, or error JSON from the error table.
 * Handlers never write error JSON themselves: they return a k_status,
 * optionally with a message set through api_fail().
 */
#ifndef KINKO_API_API_H
#define KINKO_API_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "auth/sigv4.h"
#include "core/buf.h"
#include "core/result.h"

#define API_MAX_HEADERS 64
#define API_MAX_BODY (1u << 20)        /* largest body any operation accepts */
#define API_DEFAULT_BODY (128u << 10)  /* default per-operation body limit */

struct api_ctx;

/* A principal, as authenticated by SigV4. */
struct principal {
	char account[13];        /* 12-digit account id */
	char arn[256];           /* arn:aws:iam::ACCOUNT:root / user/NAME / ... */
	char type[16];           /* "Root", "IAMUser", "AssumedRole" */
	char principal_id[128];  /* AIDA... / account id for root */
	char access_key[SIGV4_MAX_ACCESS_KEY + 1];
	const void *identity;    /* config's identity record (policies), may be NULL */
};

typedef k_status (*api_handler)(struct api_ctx *c, json_t *in, json_t *out);

struct api_operation {
	const char *name;      /* "Encrypt" */
	api_handler handler;
	const char *action;    /* IAM action, "kms:Encrypt" */
	bool read_only;        /* for the audit trail's readOnly */
	size_t max_body;       /* 0: API_DEFAULT_BODY */
};

struct api_service {
	const char *target_prefix;  /* "TrentService." */
	const char *signing_name;   /* SigV4 service: "kms" */
	const char *event_source;   /* "kms.amazonaws.com" */
	const struct api_operation *ops; /* sorted by name */
	size_t n_ops;
	/*
	 * Authorization: called after the body is parsed and before the
	 * handler (NULL: none). Operations that act on no key are authorized
	 * here; those that resolve a key are authorized as it resolves
	 * (kms/authz.h).
	 */
	k_status (*authorize)(struct api_ctx *c, json_t *in);
	/*
	 * Query protocol (STS): true when the service takes a form-encoded
	 * body with Action= instead of X-Amz-Target and answers in XML.
	 */
	bool query_protocol;
	const char *xml_namespace;  /* query protocol: "https://sts.amazonaws.com/doc/2011-06-15/" */
};

struct api_request {
	/* Filled by the HTTP layer. */
	struct kslice method;
	struct kslice path;
	struct kslice query;
	struct http_header headers[API_MAX_HEADERS];
	size_t n_headers;
	struct kslice body;
	bool body_too_large;
	char source_ip[64];
	bool secure;            /* arrived over TLS */

	/* Filled by api_handle(). */
	int status;
	struct kbuf response;   /* response body */
	const char *content_type;
	char request_id[37];
};

/* The per-request context handed to handlers. */
struct api_ctx {
	struct api_request *req;
	const struct api_service *service;
	const struct api_operation *op;
	struct principal principal;
	char region[SIGV4_MAX_REGION + 1];
	char ns[64];            /* "ACCOUNT:REGION", the storage namespace */
	struct kbuf err_msg;    /* set by api_fail() */
	int64_t now;            /* kclock_now() at arrival */
	/*
	 * Authorization inputs (kms/authz.h): what the handler knows about the
	 * request that conditions may test. Handlers fill them before they
	 * resolve a key; internal callers set via_service.
	 */
	struct {
		const char *via_service;        /* kms:ViaService, NULL if direct */
		const char *action;             /* overrides op->action for the next check */
		const json_t *encryption_context;
		const char *encryption_algorithm;
		const json_t *grant_tokens;
		const json_t *grant_operations; /* CreateGrant's Operations */
		const json_t *request_tags;     /* Tags / TagResource's Tags */
		const char *request_alias;      /* the alias the KeyId named */
	} authz;
};

/* Initializes the request (call before filling it) and releases it after. */
void api_request_init(struct api_request *r);
void api_request_release(struct api_request *r);

/* Runs the whole pipeline; the response is in r->status/response/content_type. */
void api_handle(struct api_request *r);

/*
 * Records a client-facing message for an error and returns the code, so a
 * handler can `return api_fail(c, K_E_NOT_FOUND, "Key '%s' does not exist", arn);`
 * Never put plaintext, key material or secrets in the message.
 */
k_status api_fail(struct api_ctx *c, k_status code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Finds a header by name (case-insensitive); NULL if absent. */
const struct http_header *api_header(const struct api_request *r, const char *name);

/* Registers a service table (done once at start, before serving). */
void api_register_service(const struct api_service *svc);

/*
 * Hardening: the registered operation for an X-Amz-Target value
 * ("TrentService.Encrypt"), and its service in *svc (may be NULL); NULL
 * if none. For the fuzz harnesses that call one handler directly.
 */
const struct api_operation *api_find_operation(const char *target, const struct api_service **svc);

/*
 * Member validation in the service model's terms. Each returns K_OK and
 * sets *out (NULL when absent and optional), or a ValidationException /
 * SerializationException with AWS's message ("1 validation error detected:
 * Value null at 'keyId' failed to satisfy constraint: Member must not be null").
 */
K_MUST_CHECK k_status api_string(struct api_ctx *c, json_t *in, const char *member, bool required,
				 size_t min_len, size_t max_len, const char **out);
/* Like api_string, and the value must be one of the NULL-terminated list. */
K_MUST_CHECK k_status api_enum(struct api_ctx *c, json_t *in, const char *member, bool required,
			       const char *const *allowed, const char **out);
K_MUST_CHECK k_status api_int(struct api_ctx *c, json_t *in, const char *member, bool required,
			      int64_t min, int64_t max, bool *present, int64_t *out);
K_MUST_CHECK k_status api_bool(struct api_ctx *c, json_t *in, const char *member, bool *present,
			       bool *out);
/* A base64 blob member, decoded into out (min/max are decoded lengths). */
K_MUST_CHECK k_status api_blob(struct api_ctx *c, json_t *in, const char *member, bool required,
			       size_t min_len, size_t max_len, struct kbuf *out, bool *present);
/* A map of string to string (EncryptionContext); *out NULL when absent. */
K_MUST_CHECK k_status api_string_map(struct api_ctx *c, json_t *in, const char *member,
				     json_t **out);
/* A list of strings (GrantTokens), bounded. *out NULL when absent. */
K_MUST_CHECK k_status api_string_list(struct api_ctx *c, json_t *in, const char *member,
				      size_t max_items, size_t min_len, size_t max_len, json_t **out);
/* Puts a base64 member into an output object. */
K_MUST_CHECK k_status api_set_blob(json_t *out, const char *member, const uint8_t *p, size_t n);

#endif
