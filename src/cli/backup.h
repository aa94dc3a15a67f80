/*
 * backup.h — `kinko backup` and `kinko restore`: an online copy of a data
 * folder's store and audit trail, and its restore into a new folder
 * (docs/OPERATIONS.md, "Backup and restore").
 */
#ifndef KINKO_CLI_BACKUP_H
#define KINKO_CLI_BACKUP_H

/*
 * `kinko backup --to DIR [--data DIR] [--store URL] [--config FILE]
 * [--audit-dir DIR]`: argv starts after "backup". Exit 0 only when the
 * store's copy is complete and passes its integrity check, the audit
 * trail is copied and the manifest written; 1 on a failure, 2 on a usage
 * error, with a one-line reason on standard error. Never copies the root key.
 */
int cli_backup(int argc, char **argv);

/*
 * `kinko restore --from DIR --data NEWDIR [--root-key FILE]`: argv starts
 * after "restore". NEWDIR must be absent or empty. With --root-key, a key
 * whose check value is not the backup's is refused before anything is
 * written. Exit 0 when the store is restored and sound; 1 on a failure,
 * 2 on a usage error.
 */
int cli_restore(int argc, char **argv);

#endif
