#include "core/uuid.h"

#include <stdio.h>
#include <string.h>
#include <openssl/rand.h>

#include "core/banned.h"

void kuuid_format(const uint8_t b[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

static void set_v4(uint8_t b[16])
{
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
}

void kuuid_random(char out[37])
{
	uint8_t b[16];
	if (RAND_bytes(b, sizeof b) != 1)
		memset(b, 0, sizeof b);
	set_v4(b);
	kuuid_format(b, out);
}

void kuuid_fast(char out[37])
{
	static __thread uint8_t seed[16];
	static __thread uint64_t counter;
	static __thread int seeded;
	if (!seeded) {
		if (RAND_bytes(seed, sizeof seed) != 1)
			memset(seed, 0x5a, sizeof seed);
		seeded = 1;
	}
	uint8_t b[16];
	memcpy(b, seed, 16);
	uint64_t n = ++counter;
	for (int i = 0; i < 8; i++)
		b[8 + i] ^= (uint8_t)(n >> (8 * i));
	set_v4(b);
	kuuid_format(b, out);
}
