#include "core/uuid.h"

#include <string.h>

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

void kuuid_v4(const uint8_t b[16], char out[37])
{
	uint8_t v[16];
	memcpy(v, b, sizeof v);
	v[6] = (uint8_t)((v[6] & 0x0f) | 0x40);
	v[8] = (uint8_t)((v[8] & 0x3f) | 0x80);
	kuuid_format(v, out);
}
