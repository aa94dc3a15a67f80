/*
 * req.h — one API request as the services see it: the request and its
 * context, the operation table's row type, and the helpers that read the
 * request's members and record a failure's message.
 *
 * The pipeline (api/pipeline.h) fills a struct api_request and a struct
 * api_ctx, finds the operation's row, authorizes it, and calls the row's
 * handler with the context. The services (kms/, secrets/, sts/,
 * cloudtrail/, testmode/) write their tables with the types here and
 * their handlers with the helpers here; they never include the pipeline.
 * Handlers never write error JSON themselves: they return a k_status,
 * optionally with a message set through api_fail().
 */
#ifndef KINKO_REQ_REQ_H
#define KINKO_REQ_REQ_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "auth/sigv4.h"
#include "core/buf.h"
#include "core/result.h"

#define API_MAX_HEADERS 64
#define API_MAX_BODY (1u << 20)	      /* largest body any operation accepts */
#define API_DEFAULT_BODY (128u << 10) /* default per-operation body limit */
#define API_MAX_RESPONSE (8u << 20)   /* the largest response body */
#define API_MAX_BASE64 (16u << 20)    /* a blob member's base64 text */
#define API_BASE64_KEEP (64u << 10)   /* a request thread's kept base64 buffer (api_set_blob) */
#define API_MAX_QUERY_NAME 1024	      /* one decoded query parameter name */
#define API_ERROR_MESSAGE_MAX 2048    /* an error response's message (api_fail) */

struct api_ctx;

/* A principal, as authenticated by SigV4. */
struct principal {
	char account[13];	/* 12-digit account id */
	char arn[256];		/* arn:aws:iam::ACCOUNT:root / user/NAME / ... */
	char type[16];		/* "Root", "IAMUser", "AssumedRole" */
	char principal_id[128]; /* AIDA... / account id for root */
	char access_key[SIGV4_MAX_ACCESS_KEY + 1];
	const void *identity; /* config's identity record (policies), may be NULL */
};

typedef K_MUST_CHECK k_status (*api_handler)(struct api_ctx *c, json_t *in, json_t *out);

/*
 * What an operation acts on, which decides how the pipeline authorizes it
 * before the handler runs. Zero is "not said", and a row that does not
 * say is refused at registration (api_check_operation): nothing defaults
 * to open.
 */
enum api_resource {
	API_RES_UNSET = 0,
	API_RES_NONE, /* no resource: the identity policies must allow the action on "*" */
	API_RES_PUBLIC, /* no permission needed ("No permissions are required", sts:GetCallerIdentity) */
	API_RES_KEY,	      /* a KMS key named by key id or key ARN (the row's member) */
	API_RES_KEY_OR_ALIAS, /* a KMS key named by key id, key ARN, alias name or alias ARN */
	API_RES_OWN_KEY,      /* a KMS key of the caller's own account, by key id or key ARN */
	API_RES_ALIAS,	      /* an alias (the row's member) and the key it points at */
	API_RES_SECRET, /* a secret (the row's member), resolved, authorized and state-checked before the handler */
	API_RES_CUSTOM, /* the handler resolves its resources through the service's checked resolver */
	API_RES_CIPHERTEXT, /* the KMS key a ciphertext blob (the row's member) names, or KeyId when given: both must agree */
	API_RES_REENCRYPT, /* ReEncrypt's source: as CIPHERTEXT with SourceKeyId, kms:ReEncryptFrom */
	API_RES_GRANT, /* a grant (GrantToken, or KeyId and GrantId) and its key; the grant names who may act */
};

/*
 * The key-state rule of an operation: AWS's key-state table
 * (https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html),
 * one named column set per kind of operation. kms/ops_lifecycle.c maps
 * each to what the states Enabled, Disabled, PendingDeletion,
 * PendingImport and Unavailable give. Zero is "not said" (refused).
 */
enum api_state_rule {
	API_STATE_UNSET = 0,
	API_STATE_NA,		   /* the operation acts on no key */
	API_STATE_ANY,		   /* every state */
	API_STATE_CRYPTO,	   /* Enabled only; Disabled is DisabledException */
	API_STATE_MANAGE,	   /* not pending deletion */
	API_STATE_ENABLE_DISABLE,  /* not pending deletion or import */
	API_STATE_IMPORT,	   /* not pending deletion, not unavailable */
	API_STATE_CANCEL_DELETION, /* pending deletion only */
};

/*
 * A request-rate quota: the service's class (operations of one class share
 * a bucket; NULL: the operation is its own class) and its default rate in
 * requests per second. rate 0 is "not said" (refused); API_QUOTA_NONE says
 * the operation has no quota.
 */
struct api_quota {
	const char *cls;
	double rate;
};
#define API_QUOTA_NONE (-1.0)

/*
 * One row of a service's operation table: everything kinko knows about an
 * operation that is not its handler's own logic. The pipeline (api/dispatch.c)
 * reads it to take the quota, bound the body, authorize the resource and
 * apply the key-state rule before the handler runs, and hands mutates and
 * key_use to the audit trail. Write rows with the services' row macros
 * (kms/service.c ...), which name every field.
 */
struct api_operation {
	const char *name; /* "Encrypt" */
	api_handler handler;
	const char *action; /* IAM action, "kms:Encrypt" */
	enum api_resource resource;
	const char *member; /* the request member naming the resource ("KeyId"), NULL if none */
	enum api_state_rule state;
	struct api_quota quota;
	bool mutates;	 /* changes state: an intent record first, readOnly false in the trail */
	bool key_use;	 /* a success counts as use of the key (GetKeyLastUsage) */
	size_t max_body; /* 0: API_DEFAULT_BODY */
	bool anonymous;	 /* query protocol: may come unsigned (sts:AssumeRoleWithWebIdentity) */
	bool runs_long;	 /* may take long (RSA key generation): run off the request threads */
};

/*
 * A generic error code and the service's own code for it: Secrets
 * Manager answers K_E_INTERNAL as InternalServiceError where KMS says
 * KMSInternalException (api_service_error).
 */
struct api_error_map {
	k_status from;
	k_status to;
};

struct api_service {
	const char *target_prefix;	 /* "TrentService." */
	const char *signing_name;	 /* SigV4 service: "kms" */
	const char *event_source;	 /* "kms.amazonaws.com" */
	const struct api_operation *ops; /* sorted by name */
	size_t n_ops;
	/*
	 * Authorization, called after the body is parsed and before the
	 * handler, for every row whose resource is not API_RES_PUBLIC: it
	 * authorizes the row's resource with the row's action, applies the
	 * row's state rule, and leaves what it resolved in c->resource
	 * (released by release_resource after the handler). A service
	 * without it may only have API_RES_PUBLIC and API_RES_CUSTOM rows.
	 */
	K_MUST_CHECK k_status (*authorize)(struct api_ctx *c, json_t *in);
	void (*release_resource)(struct api_ctx *c);
	/*
	 * The resource kinds this service's authorize step knows (a bit per
	 * enum api_resource); a row of another kind is refused at
	 * registration.
	 */
	unsigned resources;
	/*
	 * The service's own names for generic errors, applied by the pipeline
	 * to every error it answers and records; NULL: the error table's
	 * names are the service's.
	 */
	const struct api_error_map *errors;
	size_t n_errors;
	/*
	 * Query protocol (STS): true when the service takes a form-encoded
	 * body with Action= instead of X-Amz-Target and answers in XML.
	 */
	bool query_protocol;
	const char *xml_namespace; /* query protocol: "https://sts.amazonaws.com/doc/2011-06-15/" */
};

#define API_RES_BIT(r) (1u << (r))

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
	bool secure; /* arrived over TLS */

	/*
	 * The row X-Amz-Target names, looked up once per request (api/dispatch.c,
	 * route()): the HTTP layer's body limit and thread choice and the
	 * pipeline all read it. route_service NULL: no service has that prefix.
	 */
	bool routed;
	const struct api_service *route_service;
	const struct api_operation *route_op;

	/* Filled by api_handle(). */
	int status;
	struct kbuf response; /* response body */
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
	char ns[64];	     /* "ACCOUNT:REGION", the storage namespace */
	struct kbuf err_msg; /* set by api_fail() */
	int64_t now;	     /* kclock_now() at arrival */
	/*
	 * Authorization inputs (kms/authz.h): what the handler knows about the
	 * request that conditions may test. Handlers fill them before they
	 * resolve a key; internal callers set via_service.
	 */
	struct {
		const char *via_service; /* kms:ViaService, NULL if direct */
		const char *action;	 /* overrides op->action for the next check */
		const json_t *encryption_context;
		const char *encryption_algorithm;
		const json_t *grant_tokens;
		const json_t *grant_operations; /* CreateGrant's Operations */
		const json_t *request_tags;	/* Tags / TagResource's Tags */
		const char *request_alias;	/* the alias the KeyId named */
	} authz;
	/*
	 * Set by the service's authorize step or its checked resolvers when
	 * the caller has been authorized for this call. The pipeline refuses
	 * to run a handler (or to answer its success) without it, so a row or
	 * handler that forgets a check fails closed.
	 */
	bool authorized;
	/* The row's resource, resolved and checked before the handler (a struct kms_key for KMS). */
	void *resource;
};

/*
 * Records a client-facing message for an error and returns the code, so a
 * handler can `return api_fail(c, K_E_NOT_FOUND, "Key '%s' does not exist", arn);`
 * Never put plaintext, key material or secrets in the message.
 */
K_MUST_CHECK k_status api_fail(struct api_ctx *c, k_status code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Running one row for a context whose service, op, principal and region
 * are set (req/run.c): the service's authorize step for the row (a row
 * that leaves it unauthorized, but for CUSTOM, is refused), the handler (a
 * success no check authorized is refused: fail closed), and the release of
 * what the authorize step resolved. api_call runs the three: for work done
 * on an owner's behalf with no request (scheduled rotation), the fuzz
 * harnesses and tests; the pipeline runs the same steps for a request.
 */
K_MUST_CHECK k_status api_authorize(struct api_ctx *c, json_t *in);
K_MUST_CHECK k_status api_run_handler(struct api_ctx *c, json_t *in, json_t *out);
void api_release_resource(struct api_ctx *c);
K_MUST_CHECK k_status api_call(struct api_ctx *c, json_t *in, json_t *out);
/* The row of an operation in one service's table by name; NULL if none. */
const struct api_operation *api_service_op(const struct api_service *svc, const char *name);

/* The request's arrival to the millisecond, inside the second of c->now (kclock_ms_within). */
int64_t api_now_ms(const struct api_ctx *c);

/* The name of a resource kind and of a state rule ("key-or-alias", "crypto"). */
const char *api_resource_name(enum api_resource r);
const char *api_state_rule_name(enum api_state_rule s);

/*
 * The code svc answers for rc: its own code when its error map names rc,
 * rc itself otherwise (and for a NULL svc).
 */
K_MUST_CHECK k_status api_service_error(const struct api_service *svc, k_status rc);

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
				      size_t max_items, size_t min_len, size_t max_len,
				      json_t **out);
/* Puts a base64 member into an output object. */
K_MUST_CHECK k_status api_set_blob(json_t *out, const char *member, const uint8_t *p, size_t n);

#endif
