/*
 * audit_prune.h — `kinko audit prune`: audit retention (docs/AUDIT.md,
 * "Retention"; docs/OPERATIONS.md).
 */
#ifndef KINKO_CLI_AUDIT_PRUNE_H
#define KINKO_CLI_AUDIT_PRUNE_H

/*
 * `kinko audit prune DIR --older-than DAYS [--archive DIR2]`: argv starts
 * after "prune". Moves into DIR2 (or deletes) the sealed log files of DIR
 * sealed more than DAYS days ago, but the newest sealed one and the file
 * being written, and leaves a checkpoint so that `kinko audit verify DIR`
 * still passes. Exit 0 on success (also when nothing was old enough), 1
 * on a failure, 2 on a usage error.
 */
int cli_audit_prune(int argc, char **argv);

#endif
