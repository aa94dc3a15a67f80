#include "core/uuid.h"

#include <stdio.h>
#include <string.h>
#include <openssl/rand.h>

#include "core/banned.h"

void kuuid_format(const uint8_t b[16], char out[37])
{
	/* 8-4-4-4-12 lower-case hex digits; by hand, as it runs for every request. */
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = 0;
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
