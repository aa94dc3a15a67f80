/*
 * usage.h — the kinko command's version, its command list, each command's
 * usage, and the checks of a command line against a command's flags
 * ("unknown option --frob (did you mean --from?)").
 */
#ifndef KINKO_CLI_USAGE_H
#define KINKO_CLI_USAGE_H

#include <stdbool.h>
#include <stdio.h>

#define KINKO_VERSION "0.1.0"

/* One flag of a command: its name ("--data") and whether it takes a value. */
struct cli_flag {
	const char *name;
	bool takes_value;
};

/*
 * One command: its name as typed ("serve", "store copy"), a one-line
 * summary for the command list, its synopsis and flag descriptions, and
 * its flags (ended by a row with a NULL name). Static data: the pointers
 * stay valid for the life of the process.
 */
struct cli_command {
	const char *name;
	const char *summary;
	const char *text;
	const struct cli_flag *flags;
};

/* Prints the command list (one line per command) to `f`. */
void cli_usage(FILE *f);

/*
 * The command named by `word` and, for two-word commands ("store copy"),
 * `next` (may be NULL); NULL if there is none. *words (optional) gets how
 * many of the two words the name used (1 or 2).
 */
const struct cli_command *cli_command_find(const char *word, const char *next, int *words);

/* Prints one command's synopsis and flags to `f`. */
void cli_command_usage(const struct cli_command *c, FILE *f);

/*
 * `kinko help [CMD]` and `kinko --help`: the command list, or the usage of
 * the command named by argv (on stdout). Returns the exit status: 0, or 2
 * (after the unknown-command message) when the command does not exist.
 */
int cli_help(int argc, char **argv);

/*
 * Says on stderr that `word` is not a command, with the nearest command
 * and the command list. The caller exits 2.
 */
void cli_unknown_command(const char *word);

/*
 * Says on stderr what is wrong with the option `arg` of command c (an
 * option that takes a value given none, or an unknown option with the
 * nearest of c's flags), then c's usage. The caller exits 2.
 */
void cli_bad_option(const struct cli_command *c, const char *arg, bool at_end);

/*
 * Checks argv (the words after the command's name) against c's flags:
 * --help or -h prints c's usage on stdout and returns 0; an unknown
 * option or an option missing its value is said (cli_bad_option) and
 * returns 2; otherwise returns -1 and the command parses argv itself.
 * Words not starting with "-" (positional arguments) and the values of
 * flags pass.
 */
int cli_args_check(const struct cli_command *c, int argc, char **argv);

/* True when argv holds --help or -h (before any flag's value). */
bool cli_wants_help(int argc, char **argv);

#endif
