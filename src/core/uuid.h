/*
 * uuid.h — UUID-shaped identifiers (8-4-4-4-12 lower-case hex).
 *
 * core/ holds only the text form; the generators, which need random
 * bytes, are crypto_uuid_random and crypto_uuid_fast in crypto/uuid.h
 * (core sits below crypto/ and draws no randomness itself).
 */
#ifndef KINKO_CORE_UUID_H
#define KINKO_CORE_UUID_H

#include <stdint.h>

/* The 16 bytes b as 36 characters and a NUL in out. */
void kuuid_format(const uint8_t b[16], char out[37]);
/*
 * The 16 bytes b, with the version (4) and variant (10xx) bits of RFC 9562
 * section 5.4 set in a copy, as text in out: a version 4 UUID when b is
 * random.
 */
void kuuid_v4(const uint8_t b[16], char out[37]);

#endif
