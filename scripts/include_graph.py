#!/usr/bin/python3
"""Folder-level include graph of src/: its edges and its cycles.

Every `#include "folder/file.h"` in src/<folder>/*.c or *.h from one
folder to another is an edge folder -> folder. The script prints each
edge with the files that make it, then every cycle between folders (the
strongly connected components with more than one folder, and one
shortest cycle through each pair of folders in them).

It only reports; it changes nothing and exits 0 unless asked:
    scripts/include_graph.py [--src DIR] [--cycles-only] [--fail-on-cycle]
"""

import argparse
import collections
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/[^"]+"', re.MULTILINE)


def read_edges(src):
    """Returns {(from, to): [files]} for includes that cross folders."""
    edges = collections.defaultdict(list)
    for folder in sorted(os.listdir(src)):
        path = os.path.join(src, folder)
        if not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            if not name.endswith((".c", ".h")):
                continue
            with open(os.path.join(path, name), encoding="utf-8") as f:
                text = f.read()
            for target in sorted(set(INCLUDE.findall(text))):
                if target != folder and os.path.isdir(os.path.join(src, target)):
                    edges[(folder, target)].append(f"{folder}/{name}")
    return edges


def components(nodes, succ):
    """Tarjan's strongly connected components, each a sorted list."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def shortest_path(succ, start, goal, allowed):
    """Breadth-first path start -> goal inside `allowed`, or None."""
    prev = {start: None}
    queue = collections.deque([start])
    while queue:
        v = queue.popleft()
        if v == goal:
            path = []
            while v is not None:
                path.append(v)
                v = prev[v]
            return path[::-1]
        for w in sorted(succ.get(v, ())):
            if w in allowed and w not in prev:
                prev[w] = v
                queue.append(w)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=os.path.join(os.path.dirname(__file__), "..", "src"))
    ap.add_argument("--cycles-only", action="store_true")
    ap.add_argument("--fail-on-cycle", action="store_true")
    args = ap.parse_args()

    edges = read_edges(args.src)
    succ = collections.defaultdict(set)
    nodes = set()
    for a, b in edges:
        succ[a].add(b)
        nodes.update((a, b))

    if not args.cycles_only:
        print("edges (from -> to: files):")
        for (a, b), files in sorted(edges.items()):
            print(f"  {a} -> {b}: {', '.join(files)}")
        print()

    cyclic = [c for c in components(nodes, succ) if len(c) > 1]
    if not cyclic:
        print("no include cycle between folders")
        return 0
    print(f"{len(cyclic)} group(s) of folders in an include cycle:")
    for comp in cyclic:
        print(f"  {{{', '.join(comp)}}}")
        allowed = set(comp)
        seen = set()
        for a in comp:
            for b in sorted(succ[a] & allowed):
                back = shortest_path(succ, b, a, allowed)
                cycle = tuple([a] + back)
                key = frozenset(zip(cycle, cycle[1:]))
                if key in seen:
                    continue
                seen.add(key)
                steps = " -> ".join(cycle)
                via = "; ".join(f"{x}->{y} ({edges[(x, y)][0]}"
                                + (f" +{len(edges[(x, y)]) - 1}" if len(edges[(x, y)]) > 1 else "")
                                + ")" for x, y in zip(cycle, cycle[1:]))
                print(f"    {steps}    [{via}]")
    return 1 if args.fail_on_cycle else 0


if __name__ == "__main__":
    sys.exit(main())
