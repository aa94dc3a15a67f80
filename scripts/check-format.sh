#!/bin/sh
# Checks the C files changed since a base commit against .clang-format.
#
#   scripts/check-format.sh [BASE]     (default BASE: main)
#
# Only files changed relative to BASE are checked, so that existing code
# is not reformatted wholesale: a file is brought to the style when it is
# next changed. Prints clang-format's complaints and exits 1 if any
# changed file differs from what clang-format would write; 0 otherwise.
set -eu
base=${1:-main}
cd "$(git rev-parse --show-toplevel)"
command -v clang-format >/dev/null 2>&1 || { echo "check-format: clang-format not found" >&2; exit 2; }
git rev-parse --verify -q "$base^{commit}" >/dev/null || { echo "check-format: no commit $base" >&2; exit 2; }
bad=0
for f in $(git diff --name-only --diff-filter=ACMR "$base" -- '*.c' '*.h'); do
	[ -f "$f" ] || continue
	if ! clang-format --dry-run --Werror "$f"; then
		bad=$((bad + 1))
	fi
done
if [ "$bad" -ne 0 ]; then
	echo "check-format: $bad changed file(s) differ from .clang-format (clang-format -i FILE)" >&2
	exit 1
fi
echo "check-format: changed files match .clang-format"
