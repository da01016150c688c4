"""Stage 5 — a layer on two CPUs: its gzip and its hashes in a second thread.

``tar -czf`` is two processes joined by a pipe, tar and gzip: the walk through the files and
the compression run at the same time, on two CPUs; ``tar -xzf`` the same the other way round.
One Python process gets that with a second thread: zlib's deflate and inflate and hashlib's
SHA-256 release the GIL (the interpreter's global lock) while they work on a large buffer, so
a thread that compresses, hashes and writes runs beside the main thread's Python work. The two
hand 1 MiB chunks over through a small queue (``DEPTH`` chunks at most in flight, so memory
stays bounded), which plays the pipe's part:

    commit:   walk, headers, reads  ──chunks──>  diff_id hash, gzip, blob hash, write
              (main thread)                      (WriteBehind's thread)
    extract:  read, gunzip, hashes  ──chunks──>  headers, checks, files made
              (ReadAhead's thread)               (main thread)

Two rules keep it as safe as one thread:

- an error of the second thread reaches the main thread as the very exception it was (a corrupt
  gzip stream is still ``BadGzipFile``, a cut one ``EOFError``), at its next read or write, or
  (a write's) when the block ends: the callers' error handling does not change. A read's
  error in bytes read ahead that nobody asked for goes with them (the caller that reads on
  meets it again);
- no thread outlives its ``with`` block: whether it ends well, by an error on either side or
  by Ctrl-C, the main thread stops the helper and joins it before it goes on -- with one
  exception. A read can block for as long as its source stalls (a pipe whose writer stays
  open, a client that stopped sending): after an error, the main thread does not wait for
  such a read (``STALLED``); the reader then ends as soon as that read returns, and hands
  nothing on.

Man pages: pipe(7) (what the queue stands for). Python: threading, queue; the zlib and hashlib
docs say when they release the GIL. Used by: image/store.py (commit), image/layers.py (every
extraction: load, pull, import, build contexts, ``cp`` into a container).
"""

import queue
import threading
from typing import BinaryIO

CHUNK = 1 << 20
DEPTH = 4  # chunks in flight: enough to ride over the other side's pauses, 4 MiB at most
STALLED = 1.0  # seconds: a read of a file or a gunzip of a chunk ends well within that
_END = object()


class WriteBehind:
    """``with WriteBehind(target) as sink``: ``sink.write(data)`` returns at once and a second
    thread writes ``data`` to ``target``, in order. The block's end waits for the last write;
    an error of ``target.write`` is raised by the next ``sink.write`` or at the end."""

    def __init__(self, target: BinaryIO, depth: int = DEPTH):
        self.target, self.chunks = target, queue.Queue(depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._write_all, name="write-behind", daemon=True)

    def __enter__(self) -> "WriteBehind":
        self.thread.start()
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.chunks.put(_END)  # the thread keeps taking chunks even after an error: no wait
        self.thread.join()
        if kind is None and self.error is not None:
            raise self.error

    def write(self, data: bytes) -> int:
        if self.error is not None:
            raise self.error
        self.chunks.put(bytes(data))  # a copy: the caller may reuse its buffer at once
        return len(data)

    def _write_all(self) -> None:
        while (data := self.chunks.get()) is not _END:
            if self.error is None:  # after an error, chunks are only taken (the writer stops)
                try:
                    self.target.write(data)
                except BaseException as error:  # noqa: BLE001  (handed to the main thread)
                    self.error = error


class ReadAhead:
    """``with ReadAhead(stream) as reader``: a second thread reads ``stream`` a chunk at a
    time, ahead of ``reader.read(size)``. An error of ``stream.read`` is raised by the read
    that reaches it. The block's end stops the thread: what it had read ahead and was not
    asked for is dropped (the stream's own wrappers, which hash or count, have seen it).

    When the block ends well, its end waits for a read in progress: the caller may go on
    reading the stream (a layer's gzip trailer is hashed after its tar). When it ends by an
    error, the stream is given up: its end waits ``STALLED`` seconds at most, so that a
    stalled source does not hold the error back until the source's own timeout. A thread
    still in its read then ends as soon as the read returns; the stream's owner may close
    it meanwhile (a plain file object's ``close`` waits for that read; a raw one's does
    not)."""

    def __init__(self, stream: BinaryIO, chunk: int = CHUNK, depth: int = DEPTH):
        self.stream, self.chunk, self.chunks = stream, chunk, queue.Queue(depth)
        self.stopping, self.ended = False, False
        self.buffer, self.pos = b"", 0
        self.thread = threading.Thread(target=self._read_all, name="read-ahead", daemon=True)

    def __enter__(self) -> "ReadAhead":
        self.thread.start()
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.stopping = True
        self._drop_read_ahead()  # a put it waits on returns; after it, it puts once at most
        self.thread.join(None if kind is None else STALLED)

    def _drop_read_ahead(self) -> None:
        while True:
            try:
                self.chunks.get_nowait()
            except queue.Empty:
                return

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left for -1); b"" at the end."""
        if size < 0:
            return b"".join(iter(lambda: self.read(self.chunk), b""))
        if self.pos == len(self.buffer):
            if self.ended:
                return b""
            data, error = self.chunks.get()
            if error is not None:
                self.ended = True
                raise error
            if not data:
                self.ended = True
                return b""
            self.buffer, self.pos = data, 0
        if self.pos == 0 and size >= len(self.buffer):  # the whole chunk: no copy
            self.pos = len(self.buffer)
            return self.buffer
        data = self.buffer[self.pos:self.pos + size]
        self.pos += len(data)
        return data

    def _read_all(self) -> None:
        try:
            while not self.stopping:
                data = self.stream.read(self.chunk)
                if self.stopping:  # the block has ended while this read was in progress
                    return
                self.chunks.put((data, None))
                if not data:
                    return
        except BaseException as error:  # noqa: BLE001  (handed to the main thread)
            if not self.stopping:
                self.chunks.put((b"", error))
