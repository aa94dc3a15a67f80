#!/bin/sh
# Checks kinko's C files against .clang-format (Debian 12's clang-format 14).
#
#   scripts/check-format.sh          every .c and .h under src/, tests/unit/ and fuzz/
#   scripts/check-format.sh BASE     only the files changed since the commit BASE
#
# Prints clang-format's complaints and exits 1 if any file differs from
# what clang-format would write (fix with: clang-format -i FILE); 0
# otherwise; 2 when clang-format is missing.
set -eu
cd "$(dirname "$0")/.."
fmt=$(command -v clang-format-14 || command -v clang-format || true)
[ -n "$fmt" ] || { echo "check-format: clang-format not found (apt-get install clang-format)" >&2; exit 2; }
if [ $# -ge 1 ]; then
	git rev-parse --verify -q "$1^{commit}" >/dev/null || { echo "check-format: no commit $1" >&2; exit 2; }
	files=$(git diff --name-only --diff-filter=ACMR "$1" -- '*.c' '*.h')
else
	files=$(find src tests/unit fuzz -name '*.[ch]' | sort)
fi
bad=0
for f in $files; do
	[ -f "$f" ] || continue
	if ! "$fmt" --dry-run --Werror "$f" 2>/dev/null; then
		echo "check-format: $f differs from .clang-format (clang-format -i $f)" >&2
		bad=$((bad + 1))
	fi
done
if [ "$bad" -ne 0 ]; then
	echo "check-format: $bad file(s) differ from .clang-format" >&2
	exit 1
fi
echo "check-format: every file matches .clang-format"
