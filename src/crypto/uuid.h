/*
 * uuid.h — the UUID generators (text form: core/uuid.h).
 *
 * crypto_uuid_random: a version 4 UUID from OpenSSL's CSPRNG, for resource
 *   ids (key ids, version ids). Should the CSPRNG fail, the random part is
 *   all zero; such an id still goes through the store's create-if-absent
 *   check, so it can never overwrite another resource.
 * crypto_uuid_fast: a version 4-shaped id from a per-thread random seed
 *   and a counter, unique without a CSPRNG call; for request and event
 *   ids, which must be unique, not secret. Should the CSPRNG fail when a
 *   thread seeds, its seed is a fixed pattern (ids stay unique within the
 *   thread, by the counter).
 * Both write 36 characters and a NUL to out.
 */
#ifndef KINKO_CRYPTO_UUID_H
#define KINKO_CRYPTO_UUID_H

void crypto_uuid_random(char out[37]);
void crypto_uuid_fast(char out[37]);

#endif
