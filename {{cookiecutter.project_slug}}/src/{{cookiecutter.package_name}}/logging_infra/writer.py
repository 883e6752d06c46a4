"""Background writing: the logging call queues the record, one thread writes it.

The root logger's handlers move behind an in-process queue served by a listener
thread, which flushes whenever the queue runs empty rather than once per record.
The handlers named to stay (error.log's) write on the calling thread, so an error
is on disk before ``logger.error()`` returns, even if the process is then killed.

Worker processes send their records to the parent through a pipe: a forked
worker does so by itself; a spawned one needs ``worker_initializer()``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import logging.handlers
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from .files import LogFileHandler

if TYPE_CHECKING:
    from multiprocessing.queues import SimpleQueue

    ProcessQueue = SimpleQueue[logging.LogRecord | None]

# Records waiting at most (about 0.7 KiB each): a burst beyond it makes logging
# calls wait for the writer, so memory stays bounded (about 35 MiB).
QUEUE_SIZE = 50_000
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message"}


class _ThreadQueueHandler(logging.handlers.QueueHandler):
    """Queues records for the listener; only the message is formatted here."""

    queue: queue.SimpleQueue[Any]

    def handle(self, record: logging.LogRecord) -> bool:
        # The hot path: no filters and a thread-safe queue, so no handler lock.
        try:
            # Merge the arguments now: they may be mutable objects changed later.
            record.message = record.getMessage()
            record.msg, record.args = record.message, None
            if self.queue.qsize() >= QUEUE_SIZE:
                _wait_for_room(self.queue)
            self.queue.put_nowait(record)
        except Exception:
            self.handleError(record)
        return True


def _wait_for_room(records: queue.SimpleQueue[Any]) -> None:
    """Hold a logging call while the listener catches up: memory stays bounded."""
    while records.qsize() > QUEUE_SIZE // 2 and _writer.is_alive():
        time.sleep(0.001)


class _ProcessQueueHandler(logging.Handler):
    """Sends a worker's records to its parent through a pipe."""

    def __init__(self, pipe: ProcessQueue) -> None:
        super().__init__()
        self.pipe = pipe

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.pipe.put(_picklable(record))  # in the pipe before this returns
        except Exception:
            self.handleError(record)


def _picklable(record: logging.LogRecord) -> logging.LogRecord:
    record.message = record.getMessage()
    record.msg, record.args = record.message, None
    if record.exc_info:
        record.exc_text = record.exc_text or _FORMATTER.formatException(record.exc_info)
        record.exc_info = None
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRIBUTES and not isinstance(
            value, (str, int, float, bool, type(None))
        ):
            setattr(record, key, repr(value))
    return record


_FORMATTER = logging.Formatter()


class _Listener(logging.handlers.QueueListener):
    """A QueueListener that flushes its handlers when the queue runs empty."""

    queue: queue.SimpleQueue[Any]

    def dequeue(self, block: bool) -> Any:
        try:
            return self.queue.get_nowait()
        except queue.Empty:
            self.flush()
            return self.queue.get()

    def handle(self, record: Any) -> None:
        if isinstance(record, threading.Event):  # a flush request
            self.flush()
            record.set()
        else:
            super().handle(record)

    def flush(self) -> None:
        for handler in self.handlers:
            with contextlib.suppress(OSError, ValueError):  # as logging.shutdown()
                handler.flush()


class _Writer:
    """This process's listener thread and, once there are workers, their pipe."""

    def __init__(self) -> None:
        self.root = logging.getLogger()
        self.queue_handler: _ThreadQueueHandler | None = None
        self.listener: _Listener | None = None
        self.worker_queue: ProcessQueue | None = None
        self.forwarder: threading.Thread | None = None

    def is_alive(self) -> bool:
        thread = self.listener and self.listener._thread  # QueueListener keeps no other
        return bool(thread and thread.is_alive())

    def start(self, root: logging.Logger) -> None:
        """Move root's handlers behind a queue, but the synchronous ones."""
        self.stop()
        background = [h for h in root.handlers if not getattr(h, "synchronous", False)]
        for handler in background:
            root.removeHandler(handler)
            if isinstance(handler, LogFileHandler):
                handler.flush_each_record = False  # the listener flushes when idle
        records: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.root, self.queue_handler = root, _ThreadQueueHandler(records)
        root.addHandler(self.queue_handler)
        self.listener = _Listener(records, *background, respect_handler_level=True)
        self.resume()

    def resume(self) -> None:
        if self.listener and not self.is_alive():
            self.listener.start()
        self._start_forwarder()

    def _start_forwarder(self) -> None:
        if self.worker_queue is not None and self.forwarder is None:
            self.forwarder = threading.Thread(
                target=_forward, args=(self.worker_queue,), name="log-forwarder"
            )
            self.forwarder.daemon = True
            self.forwarder.start()

    def pause(self) -> None:
        """Write what is queued, from workers too, then end the threads."""
        if self.forwarder and self.worker_queue:
            self.worker_queue.put(None)
            self.forwarder.join()
            self.forwarder = None
        if self.is_alive() and self.listener:
            self.listener.stop()
            self.listener.flush()

    def stop(self) -> None:
        """Write what is queued and give the handlers back to the root logger, so
        that a record logged later (by another exit handler, say) is still written."""
        self.pause()
        if self.listener and self.queue_handler in self.root.handlers:
            self.root.removeHandler(self.queue_handler)
            for handler in self.listener.handlers:
                if isinstance(handler, LogFileHandler):
                    handler.flush_each_record = True
                self.root.addHandler(handler)
        self.listener = self.queue_handler = None

    def flush(self) -> None:
        """Wait until every record queued so far is written and flushed."""
        if self.is_alive() and self.listener:
            done = threading.Event()
            self.listener.queue.put_nowait(done)
            done.wait()

    def worker_pipe(self) -> ProcessQueue:
        """The pipe that workers write to; a thread passes its records on here."""
        if self.worker_queue is None:
            import multiprocessing  # only once there are workers: it is slow to import

            # A spawn context's lock may be shared with children of any start method.
            self.worker_queue = multiprocessing.get_context("spawn").SimpleQueue()
            if self.is_alive():
                self._start_forwarder()
        return self.worker_queue


_writer = _Writer()


def _forward(pipe: ProcessQueue) -> None:
    while (record := pipe.get()) is not None:
        logging.getLogger(record.name).handle(record)


def start(root: logging.Logger) -> None:
    """Serve root's handlers from a thread, but the synchronous ones."""
    _writer.start(root)


def flush() -> None:
    """Block until every record logged so far by this process is in its files."""
    _writer.flush()


def stop() -> None:
    _writer.stop()


def worker_initializer() -> Callable[..., None]:
    """An initializer that sends a worker process's records to this process."""
    return functools.partial(_init_worker, _writer.worker_pipe(), _current_levels())


def _init_worker(pipe: ProcessQueue, levels: dict[str, int], *_: object) -> None:
    global _writer
    _writer = _Writer()  # nothing of the parent's writer runs in this process
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)  # not closed: inherited files are the parent's
    root.addHandler(_ProcessQueueHandler(pipe))
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    # A worker queues nothing, so it may die of SIGTERM at once (Pool.terminate()
    # sends it); draining could deadlock on a pipe lock the signal interrupted.
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is _on_sigterm
    ):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


# A fork copies no thread and no unwritten buffer: the threads end (after writing
# everything) before the fork and start again after it in the parent, while the
# child sends its records to the parent through the worker pipe.
_paused_for_fork = False


def _before_fork() -> None:
    global _paused_for_fork
    if _writer.is_alive():
        _writer.worker_pipe()
        _writer.pause()
        _paused_for_fork = True


def _after_fork_in_parent() -> None:
    global _paused_for_fork
    if _paused_for_fork:
        _paused_for_fork = False
        _writer.resume()


def _after_fork_in_child() -> None:
    global _paused_for_fork
    if _paused_for_fork and _writer.worker_queue is not None:
        _paused_for_fork = False
        _init_worker(_writer.worker_queue, _current_levels())


def _current_levels() -> dict[str, int]:
    manager = logging.Logger.manager
    levels = {"": logging.getLogger().level}
    for name, logger in manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and logger.level:
            levels[name] = logger.level
    return levels


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
atexit.register(stop)


def drain_on_sigterm() -> None:
    """On SIGTERM, write what is queued, then die of the signal as before."""
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    logging.getLogger(__name__).warning("Terminated by signal %d", signum)
    stop()
    logging.shutdown()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    sys.exit(128 + signum)  # where the signal is not fatal at once (Windows)
