"""Worker processes that never outlive the fleet's parent process.

Two mechanisms, either one enough:

- Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker when its parent
  dies (checked against a parent that died before the call).
- Everywhere: a pipe from the parent. The parent holds the only write end; the worker's event
  loop watches the read end. A message means "stop gracefully"; end-of-file means the parent
  is gone (however it died), and the worker exits at once.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection

PR_SET_PDEATHSIG = 1
EXIT_ORPHANED = 70


def die_with_parent(parent_pid: int) -> bool:
    """Ask the kernel to kill this process when its parent dies (Linux); False elsewhere.

    Exits at once when the parent is already gone."""
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:
        os._exit(EXIT_ORPHANED)
    return armed


def watch_parent(conn: Connection, on_stop: Callable[[], None]) -> Callable[[], None]:
    """Watch the pipe in the running loop: ``on_stop`` on a stop message, exit on end-of-file.

    Returns a function that stops watching."""
    loop = asyncio.get_running_loop()
    fd = conn.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the parent's write end closed: it died (or forgot us)
            os._exit(EXIT_ORPHANED)
        on_stop()

    os.set_blocking(fd, False)
    loop.add_reader(fd, readable)

    def unwatch() -> None:
        loop.remove_reader(fd)

    return unwatch
