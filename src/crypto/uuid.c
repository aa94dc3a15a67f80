#include "crypto/uuid.h"

#include <stdint.h>
#include <string.h>

#include "core/uuid.h"
#include "crypto/crypto.h"
#include "core/banned.h"

void crypto_uuid_random(char out[37])
{
	uint8_t b[16];
	if (k_failed(crypto_random(b, sizeof b)))
		memset(b, 0, sizeof b);
	kuuid_v4(b, out);
}

void crypto_uuid_fast(char out[37])
{
	static __thread uint8_t seed[16];
	static __thread uint64_t counter;
	static __thread int seeded;
	if (!seeded) {
		if (k_failed(crypto_random(seed, sizeof seed)))
			memset(seed, 0x5a, sizeof seed);
		seeded = 1;
	}
	uint8_t b[16];
	memcpy(b, seed, 16);
	uint64_t n = ++counter;
	/*
	 * Bytes 9-15 (56 bits; byte 8's top bits are the variant, which
	 * kuuid_v4 overwrites), the counter's low byte last: one thread's ids
	 * differ in their last characters only, so that the event index's
	 * value of an id (event_index_eid_value) keeps them close together.
	 */
	for (int i = 0; i < 7; i++)
		b[15 - i] ^= (uint8_t)(n >> (8 * i));
	kuuid_v4(b, out);
}
