/*
 * startup.h — what `kinko serve` settles before it touches the store or
 * the audit trail, and the root-key checks `kinko check` shares.
 *
 * A second server on a running server's data folder, or a server started
 * with the wrong root key, must fail without changing anything: the audit
 * trail of the running server must still verify, and the store must not
 * take a check value of the wrong key. So serve, in this order:
 *   1. locks the data folder (and an audit folder outside it);
 *   2. checks that the listen address is free;
 *   3. refuses a root key file inside the data folder outside dev mode;
 *   4. opens the root key and the store, and compares the root key's check
 *      value with the one the store keeps;
 * and only then opens the audit trail and starts serving.
 *
 * Every function puts a one-line reason for the operator in `msg` when it
 * fails.
 */
#ifndef KINKO_CLI_STARTUP_H
#define KINKO_CLI_STARTUP_H

#include <stdbool.h>
#include "core/buf.h"
#include "core/result.h"
#include "storage/storage.h"

#define STARTUP_LOCK_FILE "kinko.lock"

/*
 * Takes an exclusive lock on DIR/kinko.lock (flock, created 0600 if
 * missing) and writes this process's pid into it. The lock belongs to the
 * open file, which is close-on-exec, so it ends with this process however
 * the process ends (a lock file left by a killed server does not block a
 * restart) and children never inherit it. *fd_out holds it until
 * startup_unlock_dir().
 * K_E_CONFLICT when another process holds it ("another kinko (pid N) is
 * using DIR"), K_E_STORE_UNAVAILABLE when the file cannot be opened or
 * locked.
 */
K_MUST_CHECK k_status startup_lock_dir(const char *dir, int *fd_out, struct kbuf *msg);
void startup_unlock_dir(int fd);

/*
 * Binds a throwaway socket to host:port (an IP address, as http_start
 * takes it) with the options the listener uses, and closes it: K_OK if
 * the address is free (or port is 0), K_E_CONFLICT if it is in use or
 * cannot be bound. A name that is not an IP address is left to
 * http_start to refuse.
 */
K_MUST_CHECK k_status startup_check_listen(const char *host, unsigned port, struct kbuf *msg);

/* True if both folders exist and are the same folder (symbolic links resolved). */
bool startup_same_dir(const char *a, const char *b);

/*
 * K_E_VALIDATION if the root key file lies inside the data folder (after
 * resolving symbolic links and relative paths), K_OK otherwise. A backup
 * of such a folder holds the root key beside everything it protects.
 */
K_MUST_CHECK k_status startup_root_key_outside(const char *root_key_file, const char *data_dir,
					       struct kbuf *msg);

/*
 * Compares the loaded root key's check value (keystore_check_value) with
 * the one the store keeps.
 *   K_OK            they match; or the store had none and `adopt` is set:
 *                   then the root key is first tried on the stored key
 *                   material (a store from before check values existed),
 *                   and the value is written only if some material unwraps
 *                   or there is none (needs kms_init on the store).
 *   K_E_NOT_FOUND   the store has none and `adopt` is not set.
 *   K_E_VALIDATION  they differ, or (adopting) no key material unwraps.
 *   other           the store could not be read or written.
 */
K_MUST_CHECK k_status startup_root_key_matches(struct storage *st, const char *root_key_file,
					       const char *data_dir, bool adopt, struct kbuf *msg);

#endif
