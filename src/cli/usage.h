/*
 * usage.h — the kinko command's version and usage text.
 */
#ifndef KINKO_CLI_USAGE_H
#define KINKO_CLI_USAGE_H

#include <stdio.h>

#define KINKO_VERSION "0.1.0"

/* Prints every command's synopsis and the serve flags to `f`. */
void cli_usage(FILE *f);

#endif
