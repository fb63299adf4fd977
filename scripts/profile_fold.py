#!/usr/bin/env python3
"""Folds `perf script -F comm,tid,ip,sym` output of the tasks bench into shares by part.

Each sample goes to the first part (in the order of PARTS) with a frame anywhere on its
stack that contains one of the part's patterns; SQLite's worker threads are a part of
their own. The load generator (the simulated fleet and the SDK clients) shares the bench
process with the control plane, so it is a part like the others.

Usage: profile_fold.py PERF_SCRIPT_OUTPUT [TOP] [samples|allocations]
"""

import collections
import sys

# (part, patterns): more specific parts first, since a stack can hold frames of several
# (a projection's apply runs under the projection runner, a report's append under the
# session, a RunTask's reads of the read model under its command).
PARTS = [
    ("agent-gateway sessions", ["berth_agent_gateway::session"]),
    ("agent-gateway projection", ["AgentGatewayProjection"]),
    ("agent-gateway delivery acks", ["berth_agent_gateway::delivery"]),
    ("RunTask and other API calls", ["berth_api_gateway::commands", "berth_api_gateway::server", "berth_aws_protocol::"]),
    ("api-gateway projection", ["berth_api_gateway::read_model"]),
    ("scheduler", ["berth_scheduler::"]),
    ("simulated agents (load)", ["berth_agent::"]),
    ("SDK clients (load)", ["aws_sdk_", "aws_smithy_", "aws_sigv4", "aws_runtime", "placement_throughput"]),
    ("shared tail of the log", ["berth_eventlog::tail"]),
    ("projection runners", ["berth_projection::runner"]),
    ("NATS connection", ["async_nats::"]),
    ("HTTP server", ["hyper::", "axum::"]),
]
SQLITE_THREAD = "sqlx-sqlite-wor"
ALLOCATOR_PREFIXES = ("_mi_", "mi_")
# Frames a call site is not named after: the allocator, the standard library and generic
# containers and codecs, which every part calls.
LIBRARY_PREFIXES = ALLOCATOR_PREFIXES + (
    "alloc::", "<alloc::", "core::", "<core::", "std::", "<std::", "__rust", "[unknown]",
    "hashbrown::", "<hashbrown::", "serde_core::", "<serde_core::", "bytes::", "<bytes::",
    "<T as alloc", "<&", "__mem", "futures_util::", "<futures_util::",
)


def samples(path):
    """Yields (thread name, frames leaf first) for each sample."""
    thread, frames = None, []
    with open(path, errors="replace") as lines:
        for line in lines:
            if not line.strip():
                if thread is not None:
                    yield thread, frames
                thread, frames = None, []
            elif line[0] in " \t":
                fields = line.split(None, 1)
                frames.append(fields[1].strip() if len(fields) > 1 else "?")
            else:
                thread, frames = line.split()[0], []
    if thread is not None:
        yield thread, frames


def part_of(thread, frames):
    if thread.startswith(SQLITE_THREAD):
        return "SQLite threads"
    for part, patterns in PARTS:
        if any(pattern in frame for frame in frames for pattern in patterns):
            return part
    return "other (runtime, kernel, unattributed)"


def call_site(frames):
    """The innermost frame of the program's own (or a service library's) code, with its caller."""
    own = [frame for frame in frames if not frame.startswith(LIBRARY_PREFIXES)]
    return " <- ".join(frame[:90] for frame in own[:2]) or "?"


def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    what = sys.argv[3] if len(sys.argv) > 3 else "samples"
    parts, leaves, sites = collections.Counter(), collections.Counter(), collections.Counter()
    allocator = total = 0
    for thread, frames in samples(path):
        total += 1
        parts[part_of(thread, frames)] += 1
        leaf = frames[0] if frames else "?"
        leaves[leaf] += 1
        sites[call_site(frames)] += 1
        allocator += leaf.startswith(ALLOCATOR_PREFIXES)
    if not total:
        sys.exit("no samples")
    print(f"{total} {what} of the bench process\n")
    print("| part | share |\n|---|---|")
    for part, count in parts.most_common():
        print(f"| {part} | {100 * count / total:.1f}% |")
    if what == "samples":
        print(f"\nin the allocator (mimalloc, leaf): {100 * allocator / total:.1f}%")
        print(f"\ntop {top} leaf functions:")
        for leaf, count in leaves.most_common(top):
            print(f"  {100 * count / total:5.1f}%  {leaf[:110]}")
    print(f"\ntop {top} call sites (innermost own frame <- its caller):")
    for site, count in sites.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {site}")


if __name__ == "__main__":
    main()
