/*
 * serve.h — `kinko serve`, the server, and the operation tables it
 * registers.
 */
#ifndef KINKO_CLI_SERVE_H
#define KINKO_CLI_SERVE_H

#include <stdbool.h>
#include "core/buf.h"
#include "core/result.h"
#include "storage/storage.h"

/*
 * `kinko serve ...`: argv starts after "serve". Serves until SIGTERM or
 * SIGINT, then shuts down in order and returns 0; returns 1 when a step
 * of the start fails and 2 for a usage error, with a one-line reason on
 * standard error. The steps and their order are in serve.c and
 * cli/startup.h.
 */
int cli_serve(int argc, char **argv);

/*
 * Registers every service's operation table (the API surface as data);
 * a table with an incomplete row is refused and msg names the row. `st`
 * may be NULL when nothing will be served (kinko ops); the test-mode
 * table is registered only when `test_mode` is set.
 */
K_MUST_CHECK k_status cli_register_tables(struct storage *st, bool test_mode, struct kbuf *msg);

#endif
