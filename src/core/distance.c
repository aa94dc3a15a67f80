/*
 * distance.c — edit distance of short names (distance.h).
 */
#include "core/distance.h"

#include <stdint.h>
#include <string.h>

#include "core/banned.h"

size_t k_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > K_DISTANCE_MAX_NAME || lb > K_DISTANCE_MAX_NAME)
		return SIZE_MAX;
	size_t row[K_DISTANCE_MAX_NAME + 1];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}
