"""SIGTERM completes the run record and writes what is queued, then ends the
process as it would have.

Python runs a signal handler in the main thread, and only when that thread
runs Python code again. A main thread waiting on a lock can miss the signal
for good: glibc's ``sem_wait``, woken but beaten to the lock, waits again
without reporting it (a pool worker then hangs ``Pool.terminate()``: once
in a few hundred terminations of a pool of two). So the signal also reaches a
watcher thread, through ``signal.set_wakeup_fd()``, which interrupts the main
thread until the handler runs.

Others may take SIGTERM over after setup: an event loop (asyncio's
``add_signal_handler()``, which puts the default action back and drops the
wakeup fd when the loop closes), a library, the user. The watcher looks every
POLL_SECONDS: a SIGTERM left at its default action is taken back the next time
the main thread logs. While another handler is in place it runs, not this one,
and the watcher writes what is queued meanwhile, in case that handler ends the
process without running exit handlers.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time

TYPE_CHECKING = False  # typing is slow to import, and only the checker needs it
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

# A main thread that runs no Python code this long after SIGTERM (stuck in a
# C call) is not waited for: the watcher writes what is queued and kills.
GRACE_SECONDS = 5.0
# How often the watcher looks whether SIGTERM was put back to its default action.
POLL_SECONDS = 0.1

ASYNC_SIGNALS = {
    getattr(signal, name)
    for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGALRM", "SIGUSR1")
    if hasattr(signal, name)
}


def leave_signals_to_the_main_thread() -> None:
    """Block the usual signals in this (background) thread.

    The kernel hands a process's signal to any thread that does not block it;
    one that landed on a logging thread would leave the main thread unaware.
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, ASYNC_SIGNALS)


_before_exit: Callable[[], object] | None = None
_drain: Callable[[], object] | None = None
_record_death: Callable[[int], object] | None = None
_terminating = False
_pipe: tuple[int, int] | None = None  # the watcher's end, the handler's end
_watcher_thread: threading.Thread | None = None
_wanted = False  # install() ran on the main thread: SIGTERM is to be handled
# The watcher found SIGTERM at its default action: the main thread takes it
# back (reclaim()) the next time it logs.
reset = False
_masks = threading.local()  # the forking thread's signal mask before a fork


def install(before_exit: Callable[[], object], drain: Callable[[], object]) -> None:
    """Run ``before_exit()`` on SIGTERM, where SIGTERM still ends the process;
    ``drain()`` (write what is queued) while another handler handles it.

    Only from the main thread, and only over the default action: a handler
    of the user's or of a launcher's is theirs.
    """
    global _before_exit, _drain, _wanted
    _before_exit, _drain = before_exit, drain
    if threading.current_thread() is not threading.main_thread():
        return
    _wanted = True
    reclaim()


def reclaim() -> None:
    """On the main thread: handle SIGTERM again if it was put back to its
    default action, and take the wakeup fd back if nobody holds it."""
    global reset
    if not _wanted or threading.current_thread() is not threading.main_thread():
        return
    reset = False
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
    _watch()


def before_death(record: Callable[[int], object]) -> None:
    """Call ``record(signal number)`` first when SIGTERM ends the process: the
    run record says so before the process dies."""
    global _record_death
    _record_death = record


def _last_words(signum: int) -> None:
    """Record the death, then write what is queued."""
    try:
        if _record_death is not None:
            _record_death(signum)
    finally:
        if _before_exit is not None:
            _before_exit()  # gives up only when the writer makes no progress


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # The main thread may be inside a handler that this one would enter again:
    # the writer thread does the writing, and the process dies whatever happens.
    global _terminating
    if _terminating:
        return  # the watcher's reminder, while this runs
    _terminating = True
    try:
        _last_words(signum)
    except Exception:
        pass
    finally:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    raise SystemExit(128 + signum)  # where the signal is not fatal at once (Windows)


def _watch() -> None:
    """Start the watcher, and give it the wakeup fd unless another holds it
    (an event loop's)."""
    global _pipe, _watcher_thread
    if not hasattr(signal, "pthread_kill"):
        return  # Windows: no signal interrupts a waiting thread there anyway
    if _pipe is None:
        read, write = os.pipe()
        os.set_blocking(write, False)  # the signal handler must never block
        _pipe = read, write
    try:
        previous = signal.set_wakeup_fd(_pipe[1], warn_on_full_buffer=False)
    except ValueError:  # not the main interpreter
        return
    if previous not in (-1, _pipe[1]):
        signal.set_wakeup_fd(previous)  # an event loop's: it stays
    if _watcher_thread is None:
        _watcher_thread = threading.Thread(
            target=_watcher, args=(_pipe[0],), name="log-sigterm"
        )
        _watcher_thread.daemon = True
        _watcher_thread.start()


def _watcher(read: int) -> None:
    global reset
    leave_signals_to_the_main_thread()
    while True:
        try:
            if select.select([read], [], [], POLL_SECONDS)[0]:
                received = os.read(read, 64)  # the numbers of the signals caught
                if not received:
                    return
                if signal.SIGTERM in received and _on_signal():
                    return
        except (OSError, ValueError):  # closed (a forked child's copy)
            return
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and not _terminating:
            reset = True  # an event loop closed, say: the main thread reclaims it


def _on_signal() -> bool:
    """SIGTERM came: True if this handler ends the process."""
    global _terminating
    if signal.getsignal(signal.SIGTERM) is not _on_sigterm:
        # Another handler runs on the main thread: it decides, and may end
        # the process at once (os._exit): what is queued is written meanwhile.
        if _drain is not None:
            _drain()
        return False
    main = threading.main_thread().ident
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if _terminating:
            return True  # the handler runs, and ends the process
        if main is not None:
            signal.pthread_kill(main, signal.SIGTERM)  # a wait that missed it
    _terminating = True
    try:
        _last_words(signal.SIGTERM)
    finally:
        os.kill(os.getpid(), signal.SIGKILL)
    return True


def before_fork() -> None:
    # The child must not take SIGTERM before it has a wakeup pipe of its own:
    # its handler would write to this process's pipe.
    if _pipe is not None:
        _masks.before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


def after_fork_in_parent() -> None:
    before = getattr(_masks, "before", None)
    if before is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        _masks.before = None


def after_fork_in_child() -> None:
    """The parent's watcher thread is not in the child: watch afresh.

    Last of the child's at-fork work: a SIGTERM held back since the fork ends
    a child that knows by then whether it joined a run.
    """
    global _pipe, _terminating, _watcher_thread
    before = getattr(_masks, "before", None)
    if _pipe is None or before is None:
        return
    try:
        for fd in _pipe:
            os.close(fd)
        _pipe, _terminating, _watcher_thread = None, False, None
        signal.set_wakeup_fd(-1)
        if _wanted:
            _watch()
    finally:
        _masks.before = None
        signal.pthread_sigmask(signal.SIG_SETMASK, before)  # a SIGTERM comes now
