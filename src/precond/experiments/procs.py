"""Process liveness for the sweep: worker processes that exit when their sweep dies, and
the "is this owner still alive" test behind the store's run claims.

A worker of a ``forkserver`` pool is a child of the fork server, not of the sweep, and
the fork server stays alive as long as any worker does, so neither notices when the sweep
is killed (SIGKILL leaves no chance to clean up). Each worker therefore

* asks Linux to send it SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``; the
  parent is the sweep itself under ``spawn``, the fork server under ``forkserver``), and
* runs a watchdog thread that polls the sweep's pid every :data:`WATCH_INTERVAL` seconds
  and ends the worker (``os._exit``) when the sweep is gone: portable, and what covers the
  fork-server case. The fork server then sees its last client go and exits by itself.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

WATCH_INTERVAL = 0.25  # seconds between two looks at the sweep's pid
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a killed, not yet reaped process)."""
    if pid <= 0:
        return False
    stat = f"/proc/{pid}/stat"
    if os.path.isdir("/proc/self"):
        try:
            with open(stat) as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]  # field 3, after "(comm)"
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")
    try:  # pragma: no cover - non-Linux fallback
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """``prctl(PR_SET_PDEATHSIG, sig)`` through libc on Linux; False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover
        return False


def exit_with(owner_pid: int, interval: float = WATCH_INTERVAL) -> None:
    """Make this process exit soon after process ``owner_pid`` dies (see the module doc)."""
    parent = os.getppid()
    _set_parent_death_signal()
    if not pid_alive(parent):  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(interval)
            if not pid_alive(owner_pid):
                os._exit(1)

    threading.Thread(target=watch, name="precond-parent-watchdog", daemon=True).start()
