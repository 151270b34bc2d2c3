"""Raise the open-files limit to its hard maximum, then exec the server given as argv.

``python -m benchmarks.apps.launch uvicorn app:app ...`` keeps the process id
(``exec``), so the harness still stops the server and reads its peak RSS; the
server can hold 10,000 connections where the soft limit is the usual 1024.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys


def raise_open_files_limit() -> int:
    """Set the soft ``RLIMIT_NOFILE`` to the hard one; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m benchmarks.apps.launch PROGRAM [ARG ...]")
    raise_open_files_limit()
    program = shutil.which(argv[0]) or argv[0]
    os.execv(program, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
