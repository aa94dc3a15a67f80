#!/usr/bin/python3
"""Folder-level include graph of src/, checked against the layer table.

Every `#include "folder/file.h"` in src/<folder>/*.c or *.h from one
folder to another is an edge folder -> folder. The script prints each
edge with the files that make it, then checks the graph:

  - every folder of src/ is in LAYERS, the table of docs/ARCHITECTURE.md
    ("Layers"), which lists the layers top-down;
  - every edge goes down the table, or stays inside one layer as one of
    the SIDEWAYS edges the table allows;
  - no include cycle between folders (the strongly connected components
    with more than one folder, with one shortest cycle through each pair
    of folders in them).

It prints each problem and exits 1 if there is one, 0 otherwise:
    scripts/include_graph.py [--src DIR] [--quiet]
"""

import argparse
import collections
import os
import re
import sys

# The layer table of docs/ARCHITECTURE.md, top-down: a folder may include
# the folders of the layers below its own. Keep the two in step.
LAYERS = [
    ("command", ["cli"]),
    ("transport", ["http"]),
    ("pipeline", ["api", "quota"]),
    ("services", ["kms", "secrets", "sts", "cloudtrail", "testmode", "xks"]),
    ("settings", ["config"]),
    ("request", ["req"]),
    ("shared services", ["keystore", "policy", "audit", "scheduler"]),
    ("node", ["cluster"]),
    ("signatures and counters", ["auth", "metrics"]),
    ("foundation", ["crypto", "storage"]),
    ("core", ["core"]),
]

# The edges inside one layer that the table allows.
SIDEWAYS = {
    ("api", "quota"),          # the pipeline takes the row's quota
    ("secrets", "kms"),        # through kms/kms.h: data keys, key lookups
    ("cloudtrail", "kms"),
    ("testmode", "kms"),
    ("xks", "kms"),            # the proxy serves KMS keys, found with kms_key_get
    ("audit", "keystore"),     # the signing key is kept wrapped under the root key
}

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


def layer_problems(edges, folders):
    """The folders missing from LAYERS and the edges that go up or sideways unallowed."""
    rank = {}
    for i, (_, names) in enumerate(LAYERS):
        for name in names:
            rank[name] = i
    problems = []
    for folder in sorted(folders):
        if folder not in rank:
            problems.append(f"folder {folder} is not in the layer table (LAYERS, docs/ARCHITECTURE.md)")
    for (a, b), files in sorted(edges.items()):
        if a not in rank or b not in rank:
            continue
        if rank[a] < rank[b] or (a, b) in SIDEWAYS:
            continue
        where = "up" if rank[a] > rank[b] else "sideways"
        problems.append(f"{a} ({LAYERS[rank[a]][0]}) -> {b} ({LAYERS[rank[b]][0]}) goes {where}: "
                        + ", ".join(files))
    return problems


def cycle_problems(edges, succ, nodes):
    """One line per cycle between folders."""
    problems = []
    for comp in components(nodes, succ):
        if len(comp) < 2:
            continue
        problems.append(f"folders in an include cycle: {{{', '.join(comp)}}}")
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
                problems.append(f"  {steps}    [{via}]")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=os.path.join(os.path.dirname(__file__), "..", "src"))
    ap.add_argument("--quiet", action="store_true", help="print only the problems")
    args = ap.parse_args()

    edges = read_edges(args.src)
    folders = {f for f in os.listdir(args.src) if os.path.isdir(os.path.join(args.src, f))}
    succ = collections.defaultdict(set)
    nodes = set()
    for a, b in edges:
        succ[a].add(b)
        nodes.update((a, b))

    if not args.quiet:
        print("edges (from -> to: files):")
        for (a, b), files in sorted(edges.items()):
            print(f"  {a} -> {b}: {', '.join(files)}")
        print()

    problems = layer_problems(edges, folders) + cycle_problems(edges, succ, nodes)
    if problems:
        for p in problems:
            print(p)
        return 1
    print(f"no include cycle between folders; every edge follows the layer table ({len(edges)} edges)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
