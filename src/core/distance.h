/*
 * distance.h — how far apart two short names are, for "did you mean"
 * suggestions (configuration members, policy actions, command-line flags).
 */
#ifndef KINKO_CORE_DISTANCE_H
#define KINKO_CORE_DISTANCE_H

#include <stddef.h>

/* The longest name k_edit_distance compares. */
#define K_DISTANCE_MAX_NAME 63u

/* The Levenshtein distance of a and b (insertions, deletions and
 * substitutions); SIZE_MAX when either is longer than K_DISTANCE_MAX_NAME. */
size_t k_edit_distance(const char *a, const char *b);

#endif
