"""The container's terminal (``-t``): relaying between our terminal and the container's pty.

The container makes its pty in its own ``/dev/pts`` and sends us the master end (see
``namespaces.open_console``). We copy bytes between that master and our own terminal, which we
put in raw mode so that Ctrl-C, arrows and tab go to the container's shell as bytes. When our
window changes size (SIGWINCH) we tell the pty (TIOCSWINSZ).

Man pages: pty(7), termios(3), tty_ioctl(4).
"""

import contextlib
import fcntl
import os
import select
import signal
import termios


def copy_window_size(from_fd: int, to_fd: int) -> None:
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(from_fd, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(to_fd, termios.TIOCSWINSZ, size)


@contextlib.contextmanager
def raw_terminal(fd: int, keep_typed_ahead: bool = False):
    """Our terminal in raw mode for the duration, restored whatever happens. The switch
    discards input not read yet (TCSAFLUSH: a stray byte queued on a pty in between stays out
    of the container), unless ``keep_typed_ahead`` (TCSANOW, as Docker's term package): what a
    user typed while ``attach`` was starting reaches the container."""
    if not os.isatty(fd):
        yield
        return
    import tty  # only a run with -t comes here

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW if keep_typed_ahead else termios.TCSAFLUSH)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def relay(master: int, interactive: bool) -> None:
    """Copy our stdin to the pty and the pty to our stdout until the container closes it."""
    signal.signal(signal.SIGWINCH, lambda *_: copy_window_size(0, master))
    inputs = [master, 0] if interactive else [master]
    with raw_terminal(0) if interactive else contextlib.nullcontext():
        while True:
            try:
                ready, _, _ = select.select(inputs, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every process holding the slave end has gone
                    return
                if not data:
                    return
                write_all(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    write_all(master, data)
                else:
                    inputs.remove(0)  # our stdin ended; the container keeps running


def write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
