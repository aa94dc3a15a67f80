/*
 * secrets.h — the Secrets Manager service ("secretsmanager." table, SigV4
 * service "secretsmanager"), served on the same endpoint as KMS.
 *
 * A secret is one JSON document in storage (kind "secret", ns
 * "ACCOUNT:REGION", id = the secret's name) holding its metadata, its
 * versions and their staging labels. Each version's value is a separate
 * record (kind "secretvalue", id "<secret uid>/<version id>"), encrypted
 * by envelope encryption: a fresh 256-bit data key encrypts the value,
 * and the data key is encrypted under a KMS key of this server
 * (alias/aws/secretsmanager unless the secret names a customer key), with
 * the encryption context {"SecretARN": arn, "SecretVersionId": id}, as
 * AWS does. Plaintext values exist only in request/response buffers,
 * which are wiped when released; they are never logged.
 *
 * Rotation calls a rotation function (a local executable or an HTTP
 * endpoint registered in the configuration under a Lambda-style ARN) for
 * createSecret, setSecret, testSecret and finishSecret, on a thread of
 * its own; RotateSecret answers at once.
 */
#ifndef KINKO_SECRETS_SECRETS_H
#define KINKO_SECRETS_SECRETS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
#include "storage/storage.h"

struct api_service;
struct identity; /* config/config.h */
/* The Secrets Manager operation table, for the pipeline's registry (api_register_service). */
const struct api_service *secrets_service_table(void);
/*
 * Gives the service its store (kept for the life of the process) and
 * registers the scheduled work (purges at the end
 * of recovery windows, scheduled rotations) with the scheduler. Call after
 * kms_init (secret values are sealed under KMS keys) and before
 * scheduler_start.
 */
K_MUST_CHECK k_status secrets_init(struct storage *st);
/*
 * Initialises libcurl for the whole process with the allocator that wipes
 * every block it frees (rotation_http.c), so that any later libcurl user
 * (the JWKS fetcher of sts/) shares it: libcurl keeps the allocator of the
 * first initialisation. false if libcurl could not start.
 */
bool secrets_http_client_init(void);
/*
 * The endpoint rotation functions are told to call back
 * ("http://127.0.0.1:4599"); set once the server listens.
 */
void secrets_set_endpoint(const char *url);
/*
 * At shutdown, after the listener and the scheduler stopped: no rotation
 * step starts any more, a running rotation function gets SIGTERM (its
 * whole process group) and SIGKILL after SM_STOP_GRACE_S, an endpoint's
 * call is abandoned, and each interrupted rotation is recorded as failed
 * at its step (AWSPENDING stays; RotateSecret with the same
 * ClientRequestToken runs it again). Waits at most SM_STOP_WAIT_S for
 * that; true if every rotation ended, false if some still run (the caller
 * must then not close what they use).
 */
#define SM_STOP_GRACE_S 5
#define SM_STOP_WAIT_S 15
bool secrets_shutdown(void);

/*
 * The policy simulator (`kinko policy simulate --secret`): Secrets
 * Manager's decision for principal_arn (its configured identity, or NULL)
 * doing `action` on the stored secret document secret_doc (its ARN,
 * ResourcePolicy and Tags are read; NULL: Resource "*"), made by the same
 * evaluation a request gets: {"Decision": "allowed" | "explicitDeny" |
 * "implicitDeny", "Reason": AWS's message, "Resource": ...}. The caller
 * owns the result.
 */
json_t *sm_simulate(const char *principal_arn, const struct identity *id, const json_t *secret_doc,
		    const char *action, const char *region);

#endif
