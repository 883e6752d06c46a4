"""Background writing: the logging call queues the record, one thread writes it.

The root logger's handlers move behind an in-process queue served by a writer
thread, which flushes whenever the queue runs empty rather than once per record.
Synchronous handlers (error.log's) write on the calling thread, so an error is
on disk before ``logger.error()`` returns, even if the process is then killed.

The first process of a run to set up logging owns the files. Any process it
starts joins it (``relay``): forked children by themselves, spawned ones through
``worker_initializer()`` or their own ``setup_logging()``. A joined process
formats and masks its records, and its writer thread sends them in batches to
the owner, which only writes them.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import logging.handlers
import os
import queue
import socket
import sys
import threading
import time

from . import coexist, console, {{ "json_format, " if cookiecutter.log_format == "json" }}redact, relay, sigterm
from .console import ConsoleHandler
from .files import LogFileHandler, warn

TYPE_CHECKING = False  # typing is slow to import, and only the checker needs it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# Records waiting at most (about 0.7 KiB each): a burst beyond it makes logging
# calls wait for the writer, so memory stays bounded (about 35 MiB).
QUEUE_SIZE = 50_000
# A logging call waits for room at most this long without the writer making
# progress (a blocked console, a stuck disk); then the record is dropped.
STALL_SECONDS = 10.0
# How long flush() (and so logging.shutdown()) waits for a writer that makes no
# progress (SIGTERM waits sigterm.GRACE_SECONDS).
FLUSH_SECONDS = 30.0
# Records between two flushes while the queue never runs empty (a burst): what
# a SIGKILL can take stays small.
FLUSH_EVERY = 1024
# Items between two looks at whether the program logged meanwhile (a burst):
# if so, this thread gives up the GIL for a moment. Else a logging thread waits
# for it a whole switch interval (5 ms) each time, which doubles the cost of
# each call of a burst. The backlog is written when the program pauses. Not in
# a worker process: its pool may end it as soon as its tasks are done, and its
# backlog would then have to reach the run's owner within SIGTERM's grace.
YIELD_EVERY = 64
YIELD_SECONDS = 0.00001
# Handlers that, served by the writer thread, leave flushing to it (their
# ``flush_each_record`` is off meanwhile).
_FLUSHED_BY_WRITER = (LogFileHandler, ConsoleHandler)
# Writes a traceback as every formatter of LOGGING_CONFIG does.
_FORMATTER = logging.Formatter()


class _QueueHandler(logging.handlers.QueueHandler):
    """Queues records for the writer thread; only what may change is formatted
    here: the message, a traceback{{ " and the values of ``extra`` fields" if cookiecutter.log_format == "json" }}.

    Its ``flush()`` and ``close()`` keep the standard library's promise: when
    ``logging.shutdown()`` returns, every record logged so far is written.
    """

    queue: queue.SimpleQueue[Any]

    def __init__(self, writer: _Writer) -> None:
        super().__init__(writer.records)
        self.writer = writer

    def handle(self, record: logging.LogRecord) -> bool:
        # The hot path: no filters and a thread-safe queue, so no handler lock.
        try:
            # Merge the arguments now: they may be mutable objects changed later.
            record.message = record.getMessage()
            record.msg, record.args = record.message, None
            if record.exc_info and not record.exc_text:  # so may the exception
                record.exc_text = _FORMATTER.formatException(record.exc_info)
{%- if cookiecutter.log_format == "json" %}
            if len(vars(record)) > json_format.PLAIN_SIZE:  # and ``extra`` values
                record = json_format.as_at_the_call(record)
{%- endif %}
            if self.queue.qsize() >= QUEUE_SIZE and not self.writer.wait_for_room():
                self.writer.dropped += 1
                return True
            self.queue.put_nowait(record)
            if record.levelno >= logging.ERROR and self.writer.relay is not None:
                self.writer.flush()  # a worker's error is sent before the call returns
            if sigterm.reset:  # SIGTERM was put back to its default: take it back
                sigterm.reclaim()
        except Exception:
            redact.mask_arguments(record)  # and the error, as handleError() would
            redact.report_error(record)
        return True

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.stop()
        super().close()


class _Writer:
    """This process's writer thread, and what it writes to."""

    def __init__(self) -> None:
        self.root = logging.getLogger()
        self.records: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.handlers: list[logging.Handler] = []  # served by the thread
        self.handler: _QueueHandler | None = None
        self.thread: threading.Thread | None = None
        self.ended = threading.Event()  # set by the thread as it ends
        self.relay: relay.Sender | None = None  # in a process that joined a run
        self.server: relay.Server | None = None  # in the process that owns the files
        self.written = 0  # items handled, to tell progress from a stall
        self.dropped = 0

    def is_alive(self) -> bool:
        # Not by Thread.is_alive() alone: in a signal handler that interrupts a
        # join() of the thread just as it ended, the thread looks alive for
        # good (the join holds the lock that is_alive() looks at).
        return (
            self.thread is not None
            and not self.ended.is_set()
            and self.thread.is_alive()
        )

    def start(self, root: logging.Logger, sender: relay.Sender | None) -> None:
        """Move root's handlers behind the queue, but the synchronous ones.

        With ``sender``, this process has joined a run: its records are formatted
        by root's handlers and sent to the run's owner instead of written here.
        """
        self.stop()
        self.root, self.relay = root, sender
        if sender is None:
            self.handlers = [
                h for h in root.handlers if not getattr(h, "synchronous", False)
            ]
        else:
            sender.handlers = root.handlers[:]
            # A console of its own (a child whose stderr its caller captures):
            # this process writes it; else the owner does, with its own lines.
            sender.local = [h for h in root.handlers if _own_console(h)]
            self.handlers = [sender, *sender.local]
        for handler in root.handlers[:]:
            if handler in self.handlers or sender is not None:
                root.removeHandler(handler)
            if isinstance(handler, _FLUSHED_BY_WRITER):  # flushed as the queue empties
                handler.flush_each_record = handler not in self.handlers
        self.records = queue.SimpleQueue()
        self.handler = _QueueHandler(self)
        root.addHandler(self.handler)
        self.ended = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(self.ended,), name="log-writer"
        )
        self.thread.daemon = True
        self.thread.start()

    def _run(self, ended: threading.Event) -> None:
        try:
            self._serve()
        finally:
            ended.set()

    def _serve(self) -> None:
        sigterm.leave_signals_to_the_main_thread()
        console.never_wait_here()  # the console thread writes, dropping if stuck
        records = self.records
        gives_way = self.relay is None  # this process writes the files
        backlog = 0  # items queued at the last look
        while True:
            try:
                item = records.get_nowait()
            except queue.Empty:
                self._flush_handlers()
                item = records.get()
            self.written += 1
            if self.written % FLUSH_EVERY == 0:  # a burst: on disk as it goes
                self._flush_handlers()
            if gives_way and self.written % YIELD_EVERY == 0:
                queued = records.qsize()
                arrived, backlog = queued > backlog - YIELD_EVERY, queued
                if arrived:
                    time.sleep(YIELD_SECONDS)
            if item is None:  # the end: but what the handlers logged meanwhile
                self._drain()
                self._flush_handlers()
                return
            if isinstance(item, threading.Event):  # a flush request
                self._flush_handlers()
                item.set()
            elif isinstance(item, relay.Batch):
                item.write()
            else:
                self._handle(item)

    def _drain(self) -> None:
        """Handle what is queued, without waiting for more."""
        while True:
            try:
                item = self.records.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, threading.Event):  # a flush request, as in _serve()
                self._flush_handlers()
                item.set()
            elif isinstance(item, relay.Batch):
                item.write()
            elif item is not None:
                self._handle(item)

    def _handle(self, record: logging.LogRecord) -> None:
        for handler in self.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)

    def _flush_handlers(self) -> None:
        for handler in self.handlers:
            with contextlib.suppress(OSError, ValueError):  # as logging.shutdown()
                handler.flush()
        if self.server is not None:
            self.server.flush()
        if console.output.dropped:
            self._note_console_drops(caught_up=True)

    def _note_console_drops(self, caught_up: bool = False) -> None:
        """Say in the files how many console lines were dropped (once the console
        caught up again, or at the end); a joined process sends it to the owner."""
        dropped = console.output.take_dropped(caught_up)
        if not dropped:
            return
        from .configure import _FilesOnly  # configure imports this module

        message = "%d console lines were dropped: the console was not being read"
        record = _FilesOnly(
            __name__, logging.WARNING, __file__, 0, message, (dropped,), None, "flush"
        )
        for handler in self.handlers:  # the console's filter turns it away
            if record.levelno >= handler.level:
                handler.handle(record)
                handler.flush()

    def on_own_thread(self) -> bool:
        """Is this the writer thread, or one that feeds it?"""
        current = threading.current_thread()
        if self.thread is not None and current is self.thread:
            return True
        return self.server is not None and self.server.on_thread()

    def wait_for_room(self) -> bool:
        """Hold a logging call while the writer catches up; False to drop it.

        Never waits on the writer's own threads (a filter or a ``__repr__`` that
        logs), nor for a writer that is dead or makes no progress.
        """
        if self.on_own_thread():
            return True  # bounded by what the writer itself logs
        room = QUEUE_SIZE // 2
        return self._wait(lambda: self.records.qsize() <= room, STALL_SECONDS)

    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Wait until every record queued so far is written; False on a stall."""
        if not self.is_alive() or self.on_own_thread():
            return True
        done = threading.Event()
        self.records.put_nowait(done)
        done.wait(0.1)  # the usual case: written at once, not a poll later
        return self._wait(done.is_set, timeout) and console.output.wait()

    def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``done()``, while the writer lives and makes progress."""
        progress, since = self.written, time.monotonic()
        while not done():
            if not self.is_alive():
                return False
            time.sleep(0.001)
            if self.written != progress:
                progress, since = self.written, time.monotonic()
            elif time.monotonic() - since > timeout:
                return False
        return True

    def stop(self) -> None:
        """Write what is queued and give the handlers back to the root logger, so
        that a record logged later (by another exit handler, say) is still written."""
        if self.server is not None:
            self.server.close()  # what joined processes sent is queued first
        if self.is_alive() and not self.on_own_thread():
            self.records.put_nowait(None)
            if self.thread is not None:  # the usual end: at once, not a poll later
                self.thread.join(0.1)
            self._wait(lambda: not self.is_alive(), FLUSH_SECONDS)
        if not self.on_own_thread() and not console.output.wait():
            console.output.discard()  # a console that takes nothing: given up
        self._note_console_drops()
        if self.server is not None:
            self.server.close_files()
        if self.handler is not None and self.handler in self.root.handlers:
            coexist.unwatch()  # this changes root's handlers: not a surprise
            self.root.removeHandler(self.handler)
            for handler in self.relay.handlers if self.relay else self.handlers:
                if self.relay and isinstance(handler, LogFileHandler):
                    continue  # the owner's file: never written from here
                if isinstance(handler, _FLUSHED_BY_WRITER):
                    handler.flush_each_record = True
                self.root.addHandler(handler)
        if self.relay is not None:
            self.relay.close()
        if self.dropped:
            warn(f"{self.dropped} records were dropped: the log writer was stuck")
        self.handler = self.thread = self.relay = self.server = None
        self.handlers, self.dropped = [], 0


_writer = _Writer()
_owner_pid = 0  # of the process that writes the files
# Names the owner's standard error, for the processes that join its run.
_console_variable = ""


def start(
    root: logging.Logger,
    variable: str,
    rank: int,
    joined: socket.socket | None,
    environment: dict[str, str],
) -> None:
    """Serve root's handlers from a thread.

    ``joined``: this process joined the run whose owner listens at the address
    in the environment ``variable``. Else it owns the files, listens itself and
    sets ``variable`` and ``environment`` for the processes it starts.
    """
    global _owner_pid, _console_variable
    _console_variable = variable.removesuffix("_WRITER") + "_CONSOLE"
    if joined is not None:
        _writer.start(root, relay.Sender(os.environ[variable], rank, [], joined))
    else:
        _owner_pid = os.getpid()
        if identity := _stderr_identity():  # for joined processes to compare
            environment = {**environment, _console_variable: identity}
        handlers = root.handlers[:]
        _writer.start(root, None)
        try:
            _writer.server = relay.Server(
                variable, rank, handlers, _writer.records, environment, QUEUE_SIZE
            )
        except OSError as error:  # no socket at all: never a reason to fail
            warn(
                f"Cannot listen for the processes this one starts ({error}); "
                "they write log files of their own"
            )


def _stderr_identity() -> str | None:
    """Which file this process's standard error is (device and inode)."""
    try:
        status = os.fstat(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # None, closed, not a file
        return None
    return f"{status.st_dev}:{status.st_ino}"


def _own_console(handler: logging.Handler) -> bool:
    """Is ``handler`` a console of a joined process whose standard error is not
    the owner's? (A child run with ``capture_output=True``, or redirected.)"""
    if isinstance(handler, logging.FileHandler):
        return False
    if not isinstance(handler, logging.StreamHandler) and handler.name != "console":
        return False
    owners = os.environ.get(_console_variable)
    return owners is not None and owners != _stderr_identity()


def flush() -> None:
    """Block until every record logged so far by this process is in its files."""
    _writer.flush()


def stop() -> None:
    _writer.stop()


def worker_initializer() -> Callable[..., None]:
    """An initializer that makes a worker process join this process's run."""
    from .configure import last_setup, run_environment  # configure imports this

    return functools.partial(
        _init_worker, last_setup(), run_environment(), _current_levels()
    )


def _init_worker(
    setup: Callable[[], object],
    environment: dict[str, str],
    levels: dict[str, int],
    *_: object,
) -> None:
    # A forkserver's children inherit its environment, from before this run.
    os.environ.update(environment)
    setup()  # joins the run, at the address in the environment
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    send_before_exit()


def send_before_exit() -> None:
    """A worker process ends without running atexit (os._exit): send its last
    batch from multiprocessing's own exit hook instead."""
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.Finalize(None, stop, exitpriority=-100)  # after the pool's own
        # A forked multiprocessing child clears that registry as it starts,
        # then runs these: register again then.
        util.register_after_fork(_writer, lambda _: send_before_exit())


def _after_fork_in_child() -> None:
    try:
        _join_parent_run()
    finally:
        sigterm.after_fork_in_child()


def _join_parent_run() -> None:
    """A forked child has no writer thread: it joins the run of its parent."""
    global _writer
    parent, _writer = _writer, _Writer()
    owner = parent.server or parent.relay
    if parent.handler is None or owner is None:
        return
    sender = relay.forked(owner)
    # The parent's objects live on in this process: closing its queue handler
    # (dictConfig closes every handler) must not stop the parent's writer.
    parent.server = parent.relay = parent.thread = None
    if isinstance(owner, relay.Sender):
        formatting = owner.handlers
    else:
        synchronous = [h for h in parent.root.handlers if h is not parent.handler]
        formatting = parent.handlers + synchronous
    for handler in formatting:
        if isinstance(handler, LogFileHandler):
            handler.detach()  # the parent's file: never written from here
        elif isinstance(handler, ConsoleHandler):
            handler.held.clear()  # the parent's lines: it writes them
    for handler in parent.root.handlers[:]:
        parent.root.removeHandler(handler)
    for handler in formatting:
        parent.root.addHandler(handler)
    _writer.start(parent.root, sender)
    send_before_exit()


def _current_levels() -> dict[str, int]:
    manager = logging.Logger.manager
    levels = {"": logging.getLogger().level}
    for name, logger in manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and logger.level:
            levels[name] = logger.level
    return levels


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=sigterm.before_fork,
        after_in_parent=sigterm.after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
atexit.register(stop)


def drain_on_sigterm() -> None:
    """On SIGTERM, write what is queued, then die of the signal as before."""
    sigterm.install(_before_sigterm_exit, _write_what_is_queued)


def _before_sigterm_exit() -> None:
    if os.getpid() == _owner_pid:  # a worker's end is its owner's business
        logging.getLogger(__name__).warning("Terminated by SIGTERM")
    _write_what_is_queued()


def _write_what_is_queued() -> None:
    """Write every record queued so far, giving up only on a stalled writer. A
    joined process writes the files itself from now on: its owner, busy with
    other processes, may not read it before it dies."""
    sender = _writer.relay
    if sender is not None:
        sender.hand_over()
    _writer.flush(timeout=sigterm.GRACE_SECONDS)
