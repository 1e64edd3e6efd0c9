"""Child processes that end with Rosey: shared by the embedded servers and isolated functions."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal


def die_with_parent(parent: int) -> None:
    # Linux: the child gets SIGTERM when Rosey dies, even by kill -9, so no server is orphaned.
    # The kernel watches the *thread* that forked, so start servers from a long-lived thread.
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # Rosey died between fork and prctl: nobody would stop us
        os._exit(1)
    os.setpgid(0, 0)  # and Ctrl-C in a terminal reaches Rosey only, which stops it in order
