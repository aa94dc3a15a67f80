/*
 * quota.h — request-rate quotas per account, region and operation class,
 * as AWS KMS and Secrets Manager apply them; over the limit a call is
 * refused with ThrottlingException before its handler runs.
 *
 * The classes and default rates are AWS's, and each operation's row names
 * its own (req/req.h, struct api_quota; KMS:
 * https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html,
 * Secrets Manager: https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html).
 * KMS's "symmetric" class is the shared quota of Decrypt, Encrypt,
 * GenerateDataKey, GenerateDataKeyWithoutPlaintext, GenerateMac,
 * GenerateRandom, ReEncrypt and VerifyMac (5,500/s; 10,000/s or 50,000/s
 * in the larger regions); the class is chosen from the row alone, before
 * the key is resolved (docs/AUDIT.md).
 *
 * Each (service, account, region, class) has a bucket that allows `rate` calls per
 * second with a burst of one second's worth (GCRA on one atomic word: no
 * lock on the request path). In a cluster each node allows its share,
 * rate / live nodes (cluster/cluster.h), so the cluster as a whole allows
 * about `rate`.
 */
#ifndef KINKO_QUOTA_QUOTA_H
#define KINKO_QUOTA_QUOTA_H

#include <stdbool.h>
#include "core/buf.h"
#include "core/result.h"

/* Turns quotas on (AWS's defaults) or off. Off at start. */
void quota_enable(bool on);
bool quota_enabled(void);
/*
 * Overrides one rate: "CLASS=RATE" or "Operation=RATE" (requests per
 * second, > 0), e.g. "symmetric=100", "CreateKey=5"; `known` says whether
 * a name is a class or an operation (api_quota_name_known). Implies
 * quota_enable(true). K_E_VALIDATION with a reason in msg if malformed.
 */
K_MUST_CHECK k_status quota_set(const char *spec, bool (*known)(const char *name),
				struct kbuf *msg);
/*
 * Takes one call from the bucket of (service, account, region, class):
 * `cls` is the operation's quota class (NULL: its own) and `rate` its
 * default rate (not above 0: no quota). K_OK, or K_E_THROTTLING when over
 * the limit; K_OK when quotas are off.
 */
K_MUST_CHECK k_status quota_take(const char *service, const char *account, const char *region,
				 const char *op, const char *cls, double rate);
/* The rate that applies to an operation of class cls and default rate in a region (0: none). */
double quota_rate(const char *region, const char *op, const char *cls, double rate);
/* Forgets every bucket (test-mode reset). Not safe while requests run. */
void quota_reset(void);

#endif
