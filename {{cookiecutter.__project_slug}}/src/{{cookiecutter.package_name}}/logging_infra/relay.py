"""How every process of a run gets its records to the one process that writes.

The process that owns the log files listens on a socket (a Unix socket in a
private directory, else in Linux's abstract namespace; loopback TCP where there
is no Unix socket) and puts its address and a secret key in the environment,
which every process it starts inherits. A process that finds the address joins:
it formats and masks each record with its own handlers, then sends the text in
batches over a connection of its own, so workers share no lock, and one that
dies mid-send loses only its own unsent batch. The owner's reader threads put
the batches on its writer's queue; the writer thread only appends the text to
the files.

Both ends prove they know the key before anything else is read (a challenge
answered with a keyed hash, so the key never crosses the socket), and on Unix each
checks that the other runs as the same user. A batch is length-prefixed JSON
of plain strings and numbers: nothing received is ever unpickled or run.

When either end is done (the peer shuts its end, or the owner stops), the owner
tells the peer how many of its batches it read. A peer keeps the batches that
may still be in the socket until then, and writes those the owner did not read,
and whatever it logs after the owner has gone, to the run's files itself. The
owner's exit waits for peers that still send at most PEERS_SECONDS.

A peer that gets SIGTERM may have moments left, and an owner busy with many
peers may not read it for seconds: it hands over (``Sender.hand_over()``). It
stops sending, ending a send in progress, and writes what it has not sent to
the run's files itself; the owner drops the part of a batch that was cut, and
reads a peer that has ended to the end of its stream, even while stopping: every
whole batch in the socket is the owner's to write. (Linux tells the owner at
once that a peer has ended; elsewhere, it finds out when its answer cannot be
sent.)
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import select
import socket
import stat
import struct
import sys
import threading
import time

from .console import ConsoleHandler
from .context import process_rank
from .files import LogFileHandler, warn
from .sigterm import leave_signals_to_the_main_thread

TYPE_CHECKING = False  # typing is slow to import, and only the checker needs it
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

BATCH_RECORDS = 512  # a joined process sends at most this many records at once
# How long the owner, stopping, reads what peers still send (they write the
# rest themselves), and stops sooner once none has sent anything for
# QUIET_SECONDS.
PEERS_SECONDS = 2.0
QUIET_SECONDS = 0.5
# What a peer that has ended left in its socket is read to the end, within this
# (it is at most the socket's buffers: a fraction of a second).
ENDED_SECONDS = 10.0
# How long a peer, ending, waits for the owner to say how many of its batches
# it read; then it writes them itself, noting that they may be there twice.
CONFIRM_SECONDS = 5.0
BATCH_BYTES = 256 * 1024
SEND_TIMEOUT = 30.0  # a send that makes no progress this long gives up
HELLO_SECONDS = 5.0  # for a peer to prove it knows the key
HANDSHAKES = 64  # peers proving it at once; more are turned away meanwhile
# A frame longer than this is never read: the peer's connection ends. In JSON a
# character takes at most 12 bytes (a surrogate pair), so a record's text cut
# at MAX_TEXT characters fits, and a longer batch is sent in parts.
MAX_FRAME = 256 * 1024 * 1024
MAX_TEXT = 16 * 1024 * 1024
_HEADER = struct.Struct("!I")
_KEY_BYTES = 16
_MAGIC = b"log-relay-1\n"  # a peer's first bytes: which protocol it speaks
_NONCE_BYTES = 16
_MAC_BYTES = 32  # keyed BLAKE2b, 256 bits
# A Unix socket's peer, as the platform tells it: SO_PEERCRED's pid, uid and gid
# (Linux; OpenBSD's order is uid, gid, pid), LOCAL_PEERCRED's struct xucred:
# version, uid, number of groups, 16 groups (macOS, FreeBSD).
_CREDENTIALS = struct.Struct("3i")
_XUCRED = struct.Struct("2Ih16I")
SOL_LOCAL = 0

WARNING = logging.WARNING
# One entry per record and handler: (handler name, level, logger name, text).
Entry = tuple[str, int, str, str]


class Batch:
    """Records a joined process sent, as its handlers formatted them."""

    def __init__(self, server: Server, rank: int, entries: list[Entry]) -> None:
        self.server, self.rank, self.entries = server, rank, entries

    def write(self) -> None:
        write_entries(self.entries, lambda name: self.server.sink(name, self.rank))


def write_entries(
    entries: list[Entry], sink: Callable[[str], logging.Handler | None]
) -> None:
    """Write formatted records with the handlers that ``sink`` names."""
    for name, level, logger, text in entries:
        handler = sink(name)
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
        self.key = os.urandom(_KEY_BYTES)
        self.directory: str | None = None
        self.refused = False  # a peer that is not of this run was turned away
        self.handshakes = threading.BoundedSemaphore(HANDSHAKES)
        self.listener, where = self._listen()
        address = f"{where}:{self.key.hex()}"
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.closing = False  # no new peer is accepted
        self.leaving = False  # readers tell their peers what they read, and end
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

    def _listen(self) -> tuple[socket.socket, str]:
        """A listening socket and its address; OSError if none can be made."""
        if not hasattr(socket, "AF_UNIX"):  # Windows
            listener = socket.create_server(("127.0.0.1", 0))
            return listener, f"tcp:{listener.getsockname()[1]}"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                self.directory = _private_directory()
            except OSError:
                if sys.platform != "linux":
                    raise
                # No temporary directory to write in: a name in the abstract
                # namespace needs none, and vanishes with the socket.
                name = f"log-{os.urandom(8).hex()}"
                listener.bind(f"\0{name}")
                return listener, f"unix:@{name}"
            path = os.path.join(self.directory, "writer.sock")
            listener.bind(path)
        except OSError:
            listener.close()
            raise
        return listener, f"unix:{path}"

    def on_thread(self) -> bool:
        current = threading.current_thread()
        return current is self.thread or any(t is current for t, _ in self.readers)

    def sink(self, name: str, rank: int) -> logging.Handler | None:
        """The handler that writes ``name``'s records of ``rank``."""
        handler = _of_rank(self.handlers.get(name), rank, self.rank, self.ranked)
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
            if not _same_user(connection):
                self._refuse(connection, "runs as another user")
                continue
            if not self.handshakes.acquire(blocking=False):  # a flood of strangers
                connection.close()
                continue
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
            try:
                known = self._authenticate(connection)
            finally:
                self.handshakes.release()
            if known is None:  # it ended first: a worker killed as it joined
                return
            if not known:
                self._refuse(connection, "does not know this run's key")
                return
            read = 0

            def leave() -> bool:
                # A peer that has ended gets no answer: what it sent is read.
                return self.leaving and not _ended(connection)

            # Each batch names its rank: a process may learn its rank after it
            # joined (Lightning's ddp_spawn and ddp_fork).
            while True:
                if leave():
                    try:
                        connection.sendall(_HEADER.pack(read))
                        return  # the peer writes itself whatever it sent after these
                    except OSError:  # it has just ended: read on
                        pass
                body = _receive(connection, leave)
                if body is None:
                    break
                rank, entries = _parse_batch(body)
                # Memory stays bounded: a writer that falls behind leaves the
                # batches in the peers' sockets, and their logging calls wait.
                while self.records.qsize() > self.most_queued and not self.closing:
                    time.sleep(0.001)
                self.records.put_nowait(Batch(self, rank, entries))
                self.received += 1
                read += 1
            connection.sendall(_HEADER.pack(read))  # the end: all read
        except (OSError, ValueError):  # gone, or not speaking this protocol
            pass
        finally:
            connection.close()

    def _authenticate(self, connection: socket.socket) -> bool | None:
        """Does the peer know the key? Nothing it sends is parsed before. None:
        it closed its end before it said."""
        deadline = time.monotonic() + HELLO_SECONDS

        def give_up() -> bool:
            return self.closing or time.monotonic() > deadline

        hello = _read_exactly(connection, len(_MAGIC) + _NONCE_BYTES, give_up)
        if hello is None:
            return None if not give_up() else False
        if not hello.startswith(_MAGIC):
            return False
        challenge = os.urandom(_NONCE_BYTES)
        answer = _mac(self.key, b"owner", hello[len(_MAGIC) :])
        connection.sendall(challenge + answer)
        proof = _read_exactly(connection, _MAC_BYTES, give_up)
        if proof is None:
            return None if not give_up() else False
        return _equal(proof, _mac(self.key, b"peer", challenge))

    def _refuse(self, connection: socket.socket, why: str) -> None:
        connection.close()
        if not self.refused and not self.closing:
            self.refused = True  # one warning: a flood must not fill the console
            warn(f"Refused a connection to the log relay: the process {why}")

    def close(self) -> None:
        """Read what peers send, for PEERS_SECONDS at most, then stop listening.

        Readers of live peers stop once nothing arrives for QUIET_SECONDS,
        telling each peer how many of its batches were read: it writes the
        rest. Those of peers that ended read to the end of their stream (within
        ENDED_SECONDS more).
        """
        self.closing = True
        with contextlib.suppress(OSError), socket.socket(self.listener.family) as wake:
            wake.connect(self.listener.getsockname())  # accept() returns at once
        self.thread.join(QUIET_SECONDS)
        self._wait_for_readers(PEERS_SECONDS)
        self.leaving = True
        # Each ends at its next batch's end, or an ended peer's at the end of
        # its stream: while they read, they are waited for.
        self._wait_for_readers(ENDED_SECONDS)
        self.listener.close()
        self._forget()

    def _wait_for_readers(self, seconds: float) -> None:
        """Wait for the readers to end while batches arrive, ``seconds`` at most."""
        start = time.monotonic()
        progress, since = self.received, start
        for thread, _ in self.readers:
            while thread.is_alive() and time.monotonic() - since < QUIET_SECONDS:
                if time.monotonic() - start > seconds:
                    break
                thread.join(0.05)
                if self.received != progress:
                    progress, since = self.received, time.monotonic()

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
    slow to import), in the first temporary directory that can be written.
    Short: a Unix socket's path must fit in about 100 bytes."""
    error: OSError = FileNotFoundError("no temporary directory")
    for base in (os.environ.get("TMPDIR"), "/tmp", "/var/tmp"):
        if not base or len(base) > 60:
            continue
        path = os.path.join(base, f"log-{os.urandom(8).hex()}")
        try:
            os.mkdir(path, 0o700)
        except OSError as failure:
            error = failure
            continue
        return path
    raise error


def _of_rank(
    handler: logging.Handler | None,
    rank: int,
    own: int,
    copies: dict[tuple[str, int], logging.Handler | None],
) -> logging.Handler | None:
    """The handler for ``rank``'s records: for a rank other than ``own``, a copy
    of a file handler that writes that rank's file (kept in ``copies``)."""
    if rank == own or not isinstance(handler, LogFileHandler):
        return handler
    key = (handler.get_name(), rank)
    if key not in copies:
        copies[key] = _ranked_copy(handler, rank)
    return copies[key]


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


def _ended(connection: socket.socket) -> bool:
    """Has the peer ended its side of the stream (what is in the socket is all
    there is)? False where the platform does not tell."""
    if not hasattr(select, "POLLRDHUP"):  # Linux only
        return False
    poll = select.poll()
    poll.register(connection, select.POLLRDHUP)
    try:
        return bool(poll.poll(0))
    except OSError:
        return True


def _receive(connection: socket.socket, give_up: Callable[[], bool]) -> bytes | None:
    """One frame's bytes, or None at the end of the stream."""
    header = _read_exactly(connection, _HEADER.size, give_up)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ValueError(f"a frame of {size} bytes")
    return _read_exactly(connection, size, give_up)


def _parse_batch(body: bytes) -> tuple[int, list[Entry]]:
    """A batch's rank and entries; ValueError if the frame is anything else."""
    try:
        rank, entries = json.loads(body)
        for name, level, logger, text in entries:
            if not (
                type(name) is str
                and type(level) is int
                and type(logger) is str
                and type(text) is str
            ):
                raise ValueError("not a batch entry")
    except (TypeError, RecursionError) as error:  # not a list, nested too deep
        raise ValueError("not a batch") from error
    if type(rank) is not int or not 0 <= rank < 1 << 31 or type(entries) is not list:
        raise ValueError("not a batch")
    return rank, entries


def _read_exactly(
    connection: socket.socket, size: int, give_up: Callable[[], bool]
) -> bytes | None:
    chunks, missing = [], size
    idle = 0
    while missing:
        try:
            chunk = connection.recv(min(missing, 1 << 20))
        except TimeoutError:
            idle += 1
            if give_up() and idle > 1:
                return None  # a silent peer is not waited for
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
    appends text; but those in ``local`` (a console of this process's own)
    write here. Once the owner has gone, this process writes to the run's
    files itself.
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
        self.files_rank = rank  # whose files ``handlers`` name; a rank learned
        # later writes its own (``ranked``), once this process writes itself
        self.ranked: dict[tuple[str, int], logging.Handler | None] = {}
        self.handlers = handlers
        self.local: list[logging.Handler] = []  # written by this process's writer
        self.entries: list[Entry] = []
        self.size = 0
        self.alone = False  # the owner has gone: this process writes the files
        self.handing_over = False  # SIGTERM: it writes what it has not sent
        # Frames sent that may still be in the socket, unread: (rank, entries,
        # bytes), the oldest first, covering at least ``keep`` bytes.
        self.unconfirmed: collections.deque[tuple[int, list[Entry], int]] = (
            collections.deque()
        )
        self.unconfirmed_bytes = 0
        self.sent = 0  # frames sent on this connection
        self.keep = _buffered(connection) if connection is not None else 0

    def handle(self, record: logging.LogRecord) -> bool:
        texts: dict[int, str] = {}  # one text per formatter: info and error share
        if (rank := process_rank()) != self.rank:
            self.flush()  # a batch holds the records of one rank
            self.rank = rank
        try:
            for handler in self.handlers:
                if handler in self.local:
                    continue
                if record.levelno < handler.level or not handler.filter(record):
                    continue
                formatter = handler.formatter or logging.Formatter()
                key = id(formatter)
                if key not in texts:
                    texts[key] = _cut(formatter.format(record))
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
        if self.handing_over and not self.alone:
            self._go_alone(None)
        if self.alone:
            self._write_here(self.rank, entries)
            return
        frames = _frames(self.rank, entries)
        for number, (part, frame) in enumerate(frames):
            try:
                if self.connection is None:  # a forked child connects as it logs
                    self.connection = connect(self.address)
                    self.keep = _buffered(self.connection)
                if _readable(self.connection):  # the owner has said goodbye
                    raise ConnectionResetError("the run's log writer has ended")
                self.connection.sendall(frame)
            except OSError as error:
                self._go_alone(error)
                for rest, _ in frames[number:]:
                    self._write_here(self.rank, rest)
                return
            self.sent += 1
            self.unconfirmed.append((self.rank, part, len(frame)))
            self.unconfirmed_bytes += len(frame)
            while self.unconfirmed_bytes - self.unconfirmed[0][2] >= self.keep:
                self.unconfirmed_bytes -= self.unconfirmed.popleft()[2]

    def hand_over(self) -> None:
        """SIGTERM: from now on this process writes the files itself, beginning
        with what it has not sent. A send in progress ends (the owner drops the
        part of the batch that was cut: it is written here); the batches sent
        whole are the owner's to write, which reads the socket of a peer that
        has ended to its end. Safe to call from a signal handler."""
        self.handing_over = True
        connection = self.connection
        if connection is not None and not self.alone:
            # Both ways: a send waiting for room wakes only so (a poll for
            # room ignores the end of writing alone); an answer already here
            # can still be read.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def _go_alone(self, error: OSError | None) -> None:
        """The owner has gone: from now on this process writes the files, first
        the frames that the owner says it did not read. If it says nothing, all
        those it may not have read, with a note that they may be there twice
        (unless this process is handing over: then they are the owner's)."""
        connection, self.connection = self.connection, None
        read = None
        if connection is not None:
            wait = 0.0 if self.handing_over else 0.1 if error else CONFIRM_SECONDS
            read = _goodbye(connection, wait)
            connection.close()
        self.alone = True
        first = self.sent - len(self.unconfirmed)  # the number of the oldest kept
        unread = list(self.unconfirmed)[max(0, (read or 0) - first) :]
        self.unconfirmed.clear()
        self.unconfirmed_bytes = 0
        if read is None and self.handing_over:
            unread = []  # in the socket, which the owner reads to the end
        elif read is None and unread:
            records = sum(len(entries) for _, entries, _ in unread)
            self._note(
                f"The run's log writer did not say what it wrote of this process's "
                f"last {records} records: written here again, they may be in the "
                "files twice"
            )
        elif read is not None and read < first:  # never: the buffers hold less
            self._note(
                f"{first - read} batches of this process's records were lost: the "
                "run's log writer ended without reading them"
            )
        for rank, entries, _ in unread:
            self._write_here(rank, entries)

    def _note(self, message: str) -> None:
        """A warning in this process's files, and on standard error."""
        warn(message)
        record = logging.LogRecord(__name__, WARNING, __file__, 0, message, None, None)
        for handler in self.handlers:
            if not isinstance(handler, LogFileHandler) or handler.level > WARNING:
                continue
            with contextlib.suppress(Exception):
                text = handler.format(record)
                self._write_here(self.rank, [(handler.name or "", WARNING, "", text)])

    def _write_here(self, rank: int, entries: list[Entry]) -> None:
        """Write what the owner would have written, to the same files."""
        by_name = {h.get_name(): h for h in self.handlers if h.get_name()}
        for handler in by_name.values():
            if isinstance(handler, LogFileHandler) and handler.detached:
                handler.detached = False  # it opens the file as it writes
        write_entries(
            entries,
            lambda name: _of_rank(
                by_name.get(name), rank, self.files_rank, self.ranked
            ),
        )
        for written in [*by_name.values(), *self.ranked.values()]:
            if written is not None:
                with contextlib.suppress(OSError, ValueError):
                    written.flush()

    def close(self) -> None:
        try:
            self.flush()
            if self.connection is not None and not self.alone:
                # Done: the owner says how many frames it read, then this
                # process writes any it did not (none, unless it is ending).
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_WR)
                self._go_alone(None)
        finally:
            if self.connection is not None:
                self.connection.close()
            for handler in self.ranked.values():
                if handler is not None:
                    handler.close()
            super().close()


def _cut(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return f"{text[:MAX_TEXT]} [{len(text) - MAX_TEXT} more characters not sent]"


def _send(connection: socket.socket, rank: int, entries: list[Entry]) -> None:
    for _, frame in _frames(rank, entries):
        connection.sendall(frame)


def _frames(rank: int, entries: list[Entry]) -> list[tuple[list[Entry], bytes]]:
    """A batch as the frames to send, each with its entries."""
    body = json.dumps([rank, entries], separators=(",", ":")).encode("ascii")
    if len(body) > MAX_FRAME and len(entries) > 1:
        half = len(entries) // 2
        return _frames(rank, entries[:half]) + _frames(rank, entries[half:])
    if len(body) > MAX_FRAME:  # a logger name of many MiB
        warn(f"A record of {len(body)} bytes is too long to send; it is dropped")
        return []
    return [(entries, _HEADER.pack(len(body)) + body)]


def _buffered(connection: socket.socket) -> int:
    """At least what a connection's buffers hold: the frames sent that the
    owner may not have read cover at most this many bytes."""
    try:
        sizes = [
            connection.getsockopt(socket.SOL_SOCKET, option)
            for option in (socket.SO_SNDBUF, socket.SO_RCVBUF)
        ]
    except OSError:
        return 64 * 1024 * 1024
    return 2 * sum(sizes) + BATCH_BYTES


def _readable(connection: socket.socket, timeout: float = 0.0) -> bool:
    return bool(select.select([connection], [], [], timeout)[0])


def _goodbye(connection: socket.socket, timeout: float) -> int | None:
    """How many frames the owner says it read; None if it says nothing."""
    deadline = time.monotonic() + timeout
    answer = b""
    try:
        while len(answer) < _HEADER.size:
            if not _readable(connection, max(0.0, deadline - time.monotonic())):
                return None
            chunk = connection.recv(_HEADER.size - len(answer))
            if not chunk:
                return None
            answer += chunk
    except OSError:
        return None
    return int(_HEADER.unpack(answer)[0])


def connect(address: str) -> socket.socket:
    """A new connection to the owner at ``address``, which proved it knows the
    run's key; OSError if it is gone or cannot be trusted."""
    kind, _, rest = address.partition(":")
    where, _, key = rest.rpartition(":")
    try:
        secret = bytes.fromhex(key)
    except ValueError:
        secret = b""
    if len(secret) != _KEY_BYTES:
        raise OSError(f"not a log writer's address: {address!r}")
    if kind == "unix" and hasattr(socket, "AF_UNIX"):
        abstract = where.startswith("@")
        if not abstract:
            _check_private(where)
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(HELLO_SECONDS)
        try:
            connection.connect(f"\0{where[1:]}" if abstract else where)
            if not _same_user(connection):
                raise OSError(f"{where} is another user's socket")
        except OSError:
            connection.close()
            raise
    elif kind == "tcp" and where.isdigit():
        port = int(where)
        connection = socket.create_connection(("127.0.0.1", port), HELLO_SECONDS)
    else:
        raise OSError(f"not a log writer's address: {address!r}")
    try:
        _prove(connection, secret)
    except OSError:
        connection.close()
        raise
    connection.settimeout(SEND_TIMEOUT)
    return connection


def _prove(connection: socket.socket, key: bytes) -> None:
    """Both ends show they know ``key``, which never crosses the socket."""
    nonce = os.urandom(_NONCE_BYTES)
    connection.sendall(_MAGIC + nonce)
    reply = b""
    while len(reply) < _NONCE_BYTES + _MAC_BYTES:
        chunk = connection.recv(_NONCE_BYTES + _MAC_BYTES - len(reply))
        if not chunk:
            break
        reply += chunk
    challenge, answer = reply[:_NONCE_BYTES], reply[_NONCE_BYTES:]
    if len(answer) != _MAC_BYTES or not _equal(answer, _mac(key, b"owner", nonce)):
        raise OSError("the process there does not know this run's key")
    connection.sendall(_mac(key, b"peer", challenge))


def _mac(key: bytes, role: bytes, nonce: bytes) -> bytes:
    # Keyed BLAKE2, a MAC of its own, built into Python: an HMAC goes through
    # OpenSSL, whose locks a forked worker can inherit held by a parent's thread
    # and then wait for forever (seen in a pool's fork once in a few hundred).
    # From _blake2, which hashlib wraps: hashlib loads OpenSSL as well, some
    # ms of CPU in each spawned worker.
    try:
        from _blake2 import blake2b
    except ImportError:  # a Python without that module
        from hashlib import blake2b

    return blake2b(role + nonce, key=key, digest_size=32).digest()


def _equal(a: bytes, b: bytes) -> bool:
    # In constant time. From _operator, as hmac takes it where there is no
    # OpenSSL: hmac and secrets load OpenSSL.
    try:
        from _operator import _compare_digest
    except ImportError:  # a Python without that module
        import hmac

        return hmac.compare_digest(a, b)
    return _compare_digest(a, b)


def _same_user(connection: socket.socket) -> bool:
    """Does the peer of a Unix socket run as this process's user? True where
    the platform does not tell (the key still has to be known)."""
    try:
        uid = _peer_uid(connection)
    except (OSError, struct.error):
        return False
    return uid is None or uid == os.getuid()


def _peer_uid(connection: socket.socket) -> int | None:
    """The user id of a Unix socket's peer; None where the platform does not
    tell, or for another kind of socket."""
    if connection.family != getattr(socket, "AF_UNIX", None):
        return None
    option = getattr(socket, "SO_PEERCRED", None)
    if option is not None:
        data = connection.getsockopt(socket.SOL_SOCKET, option, _CREDENTIALS.size)
        credentials = _CREDENTIALS.unpack(data)
        return int(credentials[0 if sys.platform.startswith("openbsd") else 1])
    if sys.platform == "darwin" or sys.platform.startswith("freebsd"):
        option = getattr(socket, "LOCAL_PEERCRED", 1)
        data = connection.getsockopt(SOL_LOCAL, option, _XUCRED.size)
        return int(_XUCRED.unpack(data)[1])
    return None


def _check_private(path: str) -> None:
    """OSError unless ``path`` is a socket of this user, in a directory that
    only this user can enter: no other user can have put it there."""
    if not hasattr(os, "getuid"):
        return
    directory = os.path.dirname(path) or "."
    for name, kind, shared in (
        (directory, stat.S_ISDIR, 0o077),  # no one else may enter it
        (path, stat.S_ISSOCK, 0),
    ):
        status = os.lstat(name)
        mode = status.st_mode
        if not kind(mode) or status.st_uid != os.getuid() or mode & shared:
            raise OSError(f"{name} is not private to this user")


def forked(parent: Sender | Server) -> Sender:
    """In a forked child: drop the parent's sockets, join the parent's run."""
    if isinstance(parent, Server):
        parent.close_in_child()
        return Sender(os.environ[parent.variable], parent.rank, [])
    parent.entries.clear()
    parent.unconfirmed.clear()
    if parent.connection is not None:
        parent.connection.close()
    sender = Sender(parent.address, parent.rank, [])
    sender.alone, sender.files_rank = parent.alone, parent.files_rank
    return sender
