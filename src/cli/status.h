/*
 * status.h — `kinko status`: what a running server says of itself, for an
 * operator at a terminal (docs/OPERATIONS.md, "Is it up?").
 */
#ifndef KINKO_CLI_STATUS_H
#define KINKO_CLI_STATUS_H

/*
 * `kinko status [--endpoint URL] [--metrics URL]`: argv starts after
 * "status". Asks URL/ready (default http://127.0.0.1:4599) and prints its
 * checks; with --metrics, also the requests, errors and live nodes the
 * metrics listener's /metrics counts. Exit 0 when the server answers
 * ready, 1 when it answers not ready, 2 when it cannot be reached (or on
 * a usage error).
 */
int cli_status(int argc, char **argv);

#endif
