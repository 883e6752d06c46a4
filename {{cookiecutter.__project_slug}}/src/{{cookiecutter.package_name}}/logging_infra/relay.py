"""How every process of a run gets its records to the one process that writes.

The process that owns the log files listens on a socket (a Unix socket in a
private directory; loopback TCP with a secret where there is none) and puts its
address in the environment, which every process it starts inherits. A process
that finds the address joins: it formats and masks each record with its own
handlers, then sends the text in batches over a connection of its own, so
workers share no lock, and one that dies mid-send loses only its own unsent
batch. The owner's reader threads put the batches on its writer's queue; the
writer thread only appends the text to the files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import socket
import struct
import threading
import time

from .console import ConsoleHandler
from .context import process_rank
from .files import LogFileHandler, warn
from .sigterm import leave_signals_to_the_main_thread

TYPE_CHECKING = False  # typing is slow to import, and only the checker needs it
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

BATCH_RECORDS = 512  # a joined process sends at most this many records at once
BATCH_BYTES = 256 * 1024
SEND_TIMEOUT = 30.0  # a send that makes no progress this long gives up
_HEADER = struct.Struct("!I")
_TOKEN_BYTES = 16

# One entry per record and handler: (handler name, level, logger name, text).
Entry = tuple[str, int, str, str]


class Batch:
    """Records a joined process sent, as its handlers formatted them."""

    def __init__(self, server: Server, rank: int, entries: list[Entry]) -> None:
        self.server, self.rank, self.entries = server, rank, entries

    def write(self) -> None:
        sink = self.server.sink
        for name, level, logger, text in self.entries:
            handler = sink(name, self.rank)
            if handler is None:
                continue
            with handler.lock:  # type: ignore[union-attr]
                if isinstance(handler, (LogFileHandler, ConsoleHandler)):
                    handler.write_text(text + handler.terminator)
                elif type(handler) is logging.StreamHandler:
                    handler.stream.write(text + handler.terminator)
                else:  # Rich, tqdm: they draw records, not text
                    record = logging.makeLogRecord(
                        {"name": logger, "msg": text, "levelno": level}
                    )
                    record.levelname = logging.getLevelName(level)
                    handler.emit(record)


class Server:
    """The owner's end: accepts joined processes and reads their batches."""

    def __init__(
        self,
        variable: str,
        rank: int,
        handlers: Iterable[logging.Handler],
        records: Any,
        environment: dict[str, str],
        most_queued: int,
    ) -> None:
        self.variable, self.rank, self.records = variable, rank, records
        self.handlers = {h.get_name(): h for h in handlers if h.get_name()}
        self.ranked: dict[tuple[str, int], logging.Handler | None] = {}
        self.touched: set[logging.Handler] = set()  # to flush when idle
        self.token = os.urandom(_TOKEN_BYTES).hex()
        self.directory: str | None = None
        if hasattr(socket, "AF_UNIX"):
            self.directory = _private_directory()
            path = os.path.join(self.directory, "writer.sock")
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(path)
            address = f"unix:{path}:{self.token}"
        else:
            self.listener = socket.create_server(("127.0.0.1", 0))
            address = f"tcp:{self.listener.getsockname()[1]}:{self.token}"
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.closing = False
        self.readers: list[tuple[threading.Thread, socket.socket]] = []
        self.received = 0  # batches read, to tell progress from silence
        self.most_queued = max(8, most_queued // BATCH_RECORDS)
        # Inherited by every process started from now on: they join this run.
        self.environment = {**environment, variable: address}
        self.previous = {name: os.environ.get(name) for name in self.environment}
        os.environ.update(self.environment)
        self.thread = threading.Thread(target=self._accept, name="log-relay")
        self.thread.daemon = True
        self.thread.start()

    def on_thread(self) -> bool:
        current = threading.current_thread()
        return current is self.thread or any(t is current for t, _ in self.readers)

    def sink(self, name: str, rank: int) -> logging.Handler | None:
        """The handler that writes ``name``'s records of ``rank``."""
        handler = self.handlers.get(name)
        if rank != self.rank and isinstance(handler, LogFileHandler):
            key = (name, rank)
            if key not in self.ranked:
                self.ranked[key] = _ranked_copy(handler, rank)
            handler = self.ranked[key]
        if handler is not None:
            self.touched.add(handler)
        return handler

    def flush(self) -> None:
        touched, self.touched = self.touched, set()
        for handler in touched:
            with contextlib.suppress(OSError, ValueError):
                handler.flush()

    def _accept(self) -> None:
        leave_signals_to_the_main_thread()
        while True:
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.closing:
                connection.close()
                return
            connection.settimeout(0.2)
            thread = threading.Thread(
                target=self._read, args=(connection,), name="log-relay-reader"
            )
            thread.daemon = True
            self.readers = [(t, c) for t, c in self.readers if t.is_alive()]
            self.readers.append((thread, connection))
            thread.start()

    def _read(self, connection: socket.socket) -> None:
        """Queue each whole batch; a peer that dies mid-batch loses only that."""
        leave_signals_to_the_main_thread()
        try:
            hello = _receive(connection, lambda: self.closing)
            if not hello or hello[0] != self.token:
                return
            # Each batch names its rank: a process may learn its rank after it
            # joined (Lightning's ddp_spawn and ddp_fork).
            while (batch := _receive(connection, lambda: self.closing)) is not None:
                rank, entries = batch
                # Memory stays bounded: a writer that falls behind leaves the
                # batches in the peers' sockets, and their logging calls wait.
                while self.records.qsize() > self.most_queued and not self.closing:
                    time.sleep(0.001)
                self.records.put_nowait(Batch(self, int(rank), entries))
                self.received += 1
        except (OSError, ValueError, pickle.UnpicklingError, EOFError):
            pass
        finally:
            connection.close()

    def close(self, timeout: float = 1.0) -> None:
        """Read what peers already sent, then stop listening.

        Readers of peers that ended finish with the end of their stream; those
        of live peers give up once nothing arrives for ``timeout`` seconds.
        """
        self.closing = True
        with contextlib.suppress(OSError), socket.socket(self.listener.family) as wake:
            wake.connect(self.listener.getsockname())  # accept() returns at once
        self.thread.join(timeout)
        progress, since = self.received, time.monotonic()
        for thread, _ in self.readers:
            while thread.is_alive() and time.monotonic() - since < timeout:
                thread.join(0.05)
                if self.received != progress:
                    progress, since = self.received, time.monotonic()
        self.listener.close()
        self._forget()

    def close_files(self) -> None:
        """Close the files opened for other ranks, once the writer is done."""
        for handler in self.ranked.values():
            if handler is not None:
                handler.close()

    def close_in_child(self) -> None:
        """After a fork: the child must not hold the owner's sockets open."""
        self.listener.close()
        for _, connection in self.readers:
            connection.close()

    def _forget(self) -> None:
        for name, value in self.environment.items():
            if os.environ.get(name) != value:
                continue  # changed since: not ours to restore
            previous = self.previous[name]
            if previous is None:
                del os.environ[name]
            else:
                os.environ[name] = previous
        if self.directory:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.directory, "writer.sock"))
                os.rmdir(self.directory)


def _private_directory() -> str:
    """A new directory only its owner can enter, for the socket (tempfile is
    slow to import). Short: a Unix socket's path must fit in about 100 bytes."""
    base = os.environ.get("TMPDIR") or "/tmp"
    if not os.path.isdir(base) or len(base) > 60:
        base = "/tmp"
    path = os.path.join(base, f"log-{os.urandom(8).hex()}")
    os.mkdir(path, 0o700)
    return path


def _ranked_copy(handler: LogFileHandler, rank: int) -> LogFileHandler | None:
    root, extension = os.path.splitext(handler.baseFilename)
    try:
        copy = LogFileHandler(
            f"{root}.rank{rank}{extension}",
            handler.maxBytes,
            handler.backupCount,
            handler.encoding,
        )
    except OSError as error:
        warn(f"Cannot write the log of rank {rank} ({error}); dropping its records")
        return None
    copy.flush_each_record = handler.flush_each_record
    return copy


def _receive(connection: socket.socket, closing: Any) -> Any:
    """One framed pickle, or None at the end of the stream."""
    header = _read_exactly(connection, _HEADER.size, closing)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    body = _read_exactly(connection, size, closing)
    return None if body is None else pickle.loads(body)


def _read_exactly(connection: socket.socket, size: int, closing: Any) -> bytes | None:
    chunks, missing = [], size
    idle = 0
    while missing:
        try:
            chunk = connection.recv(min(missing, 1 << 20))
        except TimeoutError:
            idle += 1
            if closing() and idle > 1:
                return None  # the owner stops: a silent peer is not waited for
            continue
        if not chunk:
            return None
        idle = 0
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


class Sender(logging.Handler):
    """A joined process's only handler: formats records, sends them in batches.

    It formats each record with the handlers this process would otherwise
    write with (their levels, filters and formatters), so the owner only
    appends text.
    """

    def __init__(
        self,
        address: str,
        rank: int,
        handlers: list[logging.Handler],
        connection: socket.socket | None = None,
    ) -> None:
        super().__init__()
        self.address, self.rank, self.connection = address, rank, connection
        self.handlers = handlers
        self.entries: list[Entry] = []
        self.size = 0
        self.broken = False

    def handle(self, record: logging.LogRecord) -> bool:
        texts: dict[int, str] = {}  # one text per formatter: info and error share
        if (rank := process_rank()) != self.rank:
            self.flush()  # a batch holds the records of one rank
            self.rank = rank
        try:
            for handler in self.handlers:
                if record.levelno < handler.level or not handler.filter(record):
                    continue
                formatter = handler.formatter or logging.Formatter()
                key = id(formatter)
                if key not in texts:
                    texts[key] = formatter.format(record)
                text = texts[key]
                name = handler.get_name() or ""
                self.entries.append((name, record.levelno, record.name, text))
                self.size += len(text)
        except Exception:
            self.handleError(record)
        if (
            record.levelno >= logging.ERROR
            or len(self.entries) >= BATCH_RECORDS
            or self.size >= BATCH_BYTES
        ):
            self.flush()
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def flush(self) -> None:
        if not self.entries:
            return
        entries, self.entries, self.size = self.entries, [], 0
        if self.broken:
            return
        try:
            if self.connection is None:  # a forked child connects when it first logs
                self.connection = connect(self.address, self.rank)
            _send(self.connection, (self.rank, entries))
        except OSError as error:
            self.broken = True
            warn(
                f"Cannot reach the process that writes this run's logs ({error}); "
                f"this process's records are dropped from now on"
            )

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self.connection is not None:
                self.connection.close()
            super().close()


def _send(connection: socket.socket, payload: object) -> None:
    body = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    connection.sendall(_HEADER.pack(len(body)) + body)


def connect(address: str, rank: int) -> socket.socket:
    """A new connection to the owner at ``address``; OSError if it is gone."""
    kind, _, rest = address.partition(":")
    where, _, token = rest.rpartition(":")
    if kind == "unix" and hasattr(socket, "AF_UNIX"):
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(SEND_TIMEOUT)
        connection.connect(where)
    elif kind == "tcp" and where.isdigit():
        connection = socket.create_connection(("127.0.0.1", int(where)), SEND_TIMEOUT)
    else:
        raise OSError(f"not a log writer's address: {address!r}")
    _send(connection, (token, rank))
    return connection


def forked(parent: Sender | Server) -> Sender:
    """In a forked child: drop the parent's sockets, join the parent's run."""
    if isinstance(parent, Server):
        parent.close_in_child()
        return Sender(os.environ[parent.variable], parent.rank, [])
    parent.entries.clear()
    if parent.connection is not None:
        parent.connection.close()
    return Sender(parent.address, parent.rank, [])
