/*
 * xks_check.h — `kinko xks check`: an XKS proxy's full check through
 * kinko's XKS client (xks/client.h), one line per check.
 */
#ifndef KINKO_CLI_XKS_CHECK_H
#define KINKO_CLI_XKS_CHECK_H

/*
 * argv: the words after "xks check". Exit status: 0 every check passed,
 * 1 a check failed, 2 a usage error or an unreadable secret file.
 */
int cli_xks_check(int argc, char **argv);

#endif
