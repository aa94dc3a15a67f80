/*
 * store.h — the `kinko store` command.
 */
#ifndef KINKO_CLI_STORE_H
#define KINKO_CLI_STORE_H

/*
 * `kinko store copy --from URL --to URL [--force]` (docs/CLUSTER.md):
 * argv starts after "store". Copies every record of every kind and
 * namespace from one store to another, refusing a target that holds
 * records unless --force. Returns the exit status (0 copied and counted
 * again on the target, 1 failed, 2 usage).
 */
int cli_store(int argc, char **argv);

#endif
