/*
 * uuid.h — UUID-shaped identifiers (8-4-4-4-12 lower-case hex).
 *
 * kuuid_random: a version 4 UUID from OpenSSL's CSPRNG, for resource ids
 *   (key ids, version ids). Should the CSPRNG fail, the random part is all
 *   zero; such an id still goes through the store's create-if-absent check,
 *   so it can never overwrite another resource.
 * kuuid_fast: a version 4-shaped id from a per-thread random seed and a
 *   counter, unique without a CSPRNG call; for request and event ids,
 *   which must be unique, not secret.
 */
#ifndef KINKO_CORE_UUID_H
#define KINKO_CORE_UUID_H

#include <stdint.h>

void kuuid_format(const uint8_t b[16], char out[37]);
void kuuid_random(char out[37]);
void kuuid_fast(char out[37]);

#endif
