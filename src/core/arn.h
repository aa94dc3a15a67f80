/*
 * arn.h — Amazon Resource Names, parsed once and built in one place.
 *
 * An ARN is arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html).
 * k_arn_parse takes one apart into slices of the caller's text and names
 * the resource forms kinko acts on:
 *
 *   key/ID                    K_ARN_KEY           id = ID
 *   alias/NAME                K_ARN_ALIAS         id = NAME (without "alias/")
 *   secret:NAME-SUFFIX        K_ARN_SECRET        id = NAME-SUFFIX
 *   role/PATH/NAME            K_ARN_ROLE          id = PATH/NAME
 *   user/PATH/NAME            K_ARN_USER          id = PATH/NAME
 *   assumed-role/ROLE/SESSION K_ARN_ASSUMED_ROLE  id = ROLE/SESSION
 *   root                      K_ARN_ROOT          id empty
 *   anything else             K_ARN_OTHER         id = the whole resource
 *
 * The kind depends on the resource's form alone, not on the service; a
 * caller that needs "a KMS key" checks both (k_arn_is). Policy patterns
 * with wildcards are not ARNs and stay string matching (policy/).
 *
 * k_arn_format writes one back; k_arn_of fills a struct for formatting
 * from C strings (partition "aws").
 */
#ifndef KINKO_CORE_ARN_H
#define KINKO_CORE_ARN_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* The longest ARN parsed: KeyId, the longest member that carries one, is 1–2048 characters. */
#define K_ARN_MAX 2048
/* An ARN buffer for kinko's own ARNs (key, alias up to 256, secret up to 512 + suffix, principals). */
#define K_ARN_BUF 1024
/* Bounds of the fields before the resource ("aws-us-gov", "secretsmanager", "ap-southeast-1"). */
#define K_ARN_PARTITION_MAX 32
#define K_ARN_SERVICE_MAX 64
#define K_ARN_REGION_MAX 32
/* An AWS account id: exactly 12 decimal digits (or empty, as in IAM and STS ARNs' region). */
#define K_ARN_ACCOUNT_LEN 12
/* Secrets Manager appends "-" and 6 random characters to a secret's name in its ARN. */
#define K_ARN_SECRET_SUFFIX_LEN 6

enum k_arn_kind {
	K_ARN_OTHER = 0,
	K_ARN_KEY,
	K_ARN_ALIAS,
	K_ARN_SECRET,
	K_ARN_ROLE,
	K_ARN_USER,
	K_ARN_ASSUMED_ROLE,
	K_ARN_ROOT,
};

/* Slices into the parsed text (valid as long as it is), or into k_arn_of's strings. */
struct k_arn {
	struct kslice partition;
	struct kslice service;
	struct kslice region;	/* may be empty (iam, sts) */
	struct kslice account;	/* empty or 12 digits */
	struct kslice resource; /* everything after the fifth colon, never empty */
	enum k_arn_kind kind;
	struct kslice id; /* the resource without its kind's prefix (see above) */
};

/*
 * Takes s apart. Returns false, leaving *out zeroed, unless s is
 * "arn:" followed by a non-empty partition ([a-z0-9-], at most
 * K_ARN_PARTITION_MAX), a non-empty service ([a-z0-9-], at most
 * K_ARN_SERVICE_MAX), a region ([a-z0-9-], at most K_ARN_REGION_MAX, may be
 * empty), an account (empty or K_ARN_ACCOUNT_LEN digits) and a non-empty
 * resource of printable ASCII, K_ARN_MAX bytes in all. A resource with a
 * kind's prefix must have a non-empty id ("key/" alone is refused);
 * "assumed-role/" needs ROLE/SESSION, both non-empty.
 */
bool k_arn_parse(struct kslice s, struct k_arn *out);
/* k_arn_parse over a NUL-terminated string (NULL is refused). */
bool k_arn_parse_cstr(const char *s, struct k_arn *out);

/* True if a is of that service and kind ("kms", K_ARN_KEY). */
bool k_arn_is(const struct k_arn *a, const char *service, enum k_arn_kind kind);

/*
 * The struct k_arn for formatting: partition "aws", the strings as slices
 * (NULL is empty), resource left empty (k_arn_format builds it from kind
 * and id). The strings must outlive the struct's use.
 */
struct k_arn k_arn_of(const char *service, const char *region, const char *account,
		      enum k_arn_kind kind, const char *id);

/*
 * Writes "arn:PARTITION:SERVICE:REGION:ACCOUNT:" and the resource, built
 * from kind and id ("key/" + id, "root", ...; for K_ARN_OTHER the id, or
 * the resource when the id is empty), and a NUL into out, as snprintf
 * does: returns the ARN's length; when that is n or more, out holds as much
 * as fits (callers that must not use a cut ARN check the length).
 */
size_t k_arn_format(const struct k_arn *a, char *out, size_t n);

/* The resource prefix of a kind ("key/", "secret:", "root"; "" for K_ARN_OTHER). */
const char *k_arn_kind_prefix(enum k_arn_kind kind);

#endif
