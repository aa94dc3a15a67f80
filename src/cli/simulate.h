/*
 * simulate.h — the `kinko policy simulate` command.
 */
#ifndef KINKO_CLI_SIMULATE_H
#define KINKO_CLI_SIMULATE_H

/*
 * `kinko policy simulate ...` (docs/AUTHORIZATION.md): argv starts at
 * "simulate". Prints the explanation as JSON on stdout and returns the
 * exit status (0 allowed, 1 denied, 2 usage or lookup error).
 */
int cli_policy_simulate(int argc, char **argv);

#endif
