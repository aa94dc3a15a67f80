/*
 * quota.h — request-rate quotas per account, region and operation class,
 * as AWS KMS and Secrets Manager apply them; over the limit a call is
 * refused with ThrottlingException before its handler runs.
 *
 * The classes and default rates are AWS's (KMS:
 * https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html):
 * "symmetric" is the shared quota of Decrypt, Encrypt, GenerateDataKey,
 * GenerateDataKeyWithoutPlaintext, GenerateMac, GenerateRandom, ReEncrypt
 * and VerifyMac (5,500/s; 10,000/s or 50,000/s in the larger regions);
 * "rsa" (500/s) and "ecc" (300/s) the shared asymmetric quotas; the
 * management operations each have their own (CreateKey 50/s, DescribeKey
 * 2,000/s, ScheduleKeyDeletion 5/s ...). The class is chosen from the
 * operation name alone, before the key is resolved: Sign and Verify count
 * against "rsa", DeriveSharedSecret against "ecc", and Encrypt/Decrypt
 * against "symmetric" whatever the key (docs/AUDIT.md).
 *
 * Each (account, region, class) has a bucket that allows `rate` calls per
 * second with a burst of one second's worth (GCRA on one atomic word: no
 * lock on the request path).
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
 * second, > 0), e.g. "symmetric=100", "CreateKey=5". Implies
 * quota_enable(true). K_E_VALIDATION with a reason in msg if malformed.
 */
K_MUST_CHECK k_status quota_set(const char *spec, struct kbuf *msg);
/*
 * Takes one call from the bucket of (account, region, the operation's
 * class). K_OK, or K_E_THROTTLING when over the limit; K_OK for
 * operations without a quota and when quotas are off.
 */
K_MUST_CHECK k_status quota_take(const char *account, const char *region, const char *op);
/* The rate that applies to an operation in a region (0: none). For docs and tests. */
double quota_rate(const char *region, const char *op);
/* Forgets every bucket (test-mode reset). Not safe while requests run. */
void quota_reset(void);

#endif
