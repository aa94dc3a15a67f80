#!/usr/bin/python3
"""Functions in src/ longer than a limit (default 80 lines), and files
longer than another (default 800 lines).

A function is a definition whose body opens with "{" in column 0 and
closes with the next "}" in column 0 (the layout clang-format gives the
tree); its length counts the lines of its body, braces included.
Prints "file:line name length" for each function over the limit, sorted
longest first.

Functions named in ALLOWED are reported apart and do not fail the check;
each entry says why it is there. Exit status 1 if any other function is
over the limit, or if an allowed function no longer exists or is within
the limit (so that the list shrinks as the code does).

A source file (.c or .h) over --file-limit lines fails the check too:
split it by what its parts do, not by line count.

    scripts/long_functions.py [--src DIR] [--limit N] [--file-limit N]
"""

import argparse
import os
import re
import sys

# name -> why it may be longer than the limit for now.
ALLOWED = {
    # Empty: every function of src/ is within the limit. A function that
    # must stay longer is named here with the reason.
}

NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def functions(path):
    """Yields (line, name, length) for each function definition in a C file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        if lines[i] != "{":
            i += 1
            continue
        # The header: back to the line that starts in column 0 with the name.
        h = i - 1
        while h > 0 and lines[h][:1] in ("\t", " ", ")") and "(" not in lines[h]:
            h -= 1
        while h > 0 and lines[h][:1] in ("\t", " "):
            h -= 1
        m = NAME.search(lines[h]) if h >= 0 else None
        end = i + 1
        while end < len(lines) and not lines[end].startswith("}"):
            end += 1
        if m is not None:
            yield h + 1, m.group(1), end - i + 1
        i = end + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=os.path.join(os.path.dirname(__file__), "..", "src"))
    ap.add_argument("--limit", type=int, default=80)
    ap.add_argument("--file-limit", type=int, default=800)
    args = ap.parse_args()
    over, allowed_seen, long_files = [], set(), []
    for root, _, files in os.walk(args.src):
        for name in sorted(files):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(root, name)
            with open(path, encoding="utf-8") as f:
                n_lines = f.read().count("\n")
            if n_lines > args.file_limit:
                long_files.append((n_lines, os.path.relpath(path, os.path.join(args.src, ".."))))
            if not name.endswith(".c"):
                continue
            for line, fn, length in functions(path):
                if length <= args.limit:
                    continue
                rel = os.path.relpath(path, os.path.join(args.src, ".."))
                over.append((length, rel, line, fn))
    over.sort(reverse=True)
    failed = False
    for length, rel, line, fn in over:
        if fn in ALLOWED:
            allowed_seen.add(fn)
            print("allowed %s:%d %s %d (%s)" % (rel, line, fn, length, ALLOWED[fn]))
        else:
            failed = True
            print("%s:%d %s %d" % (rel, line, fn, length))
    for fn in sorted(set(ALLOWED) - allowed_seen):
        failed = True
        print("allow-list: %s is no longer over %d lines; remove it" % (fn, args.limit))
    for n_lines, rel in sorted(long_files, reverse=True):
        failed = True
        print("%s: %d lines (at most %d in a file)" % (rel, n_lines, args.file_limit))
    if not failed:
        print("no function over %d lines outside the allow-list, no file over %d lines"
              % (args.limit, args.file_limit))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
