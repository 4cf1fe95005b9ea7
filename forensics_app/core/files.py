"""Opening input files and writing output files without being hung, fooled or made to destroy inputs.

- Inputs are opened read-only and only when they are regular files: a named pipe would block the read
  forever and a device (/dev/zero) never ends, so both are refused before a byte is read.
- Outputs are written to a temporary file beside the destination and renamed over it once complete, so
  a crash leaves the old file or the new one, never half of either; and an output that is the same file
  as one of the inputs is refused before anything is computed.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from forensics_app.core.errors import ForensicsError


def printable(text: str) -> str:
    """`text` for one line of output: control characters escaped (a newline in a file name cannot split
    a line) and bytes that were not valid UTF-8 in a file name (kept by Python as lone surrogates)
    shown as \\xNN; letters of every script are kept as they are."""
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's surrogateescape of one undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


class NotARegularFile(OSError):
    """The path names a folder, device, pipe or socket: nothing is read from it."""


@contextlib.contextmanager
def open_regular_file(path: str | Path) -> Iterator[BinaryIO]:
    """Open `path` read-only as a binary file; raises NotARegularFile (an OSError) unless it is a regular
    file, so a named pipe or a device cannot hang or flood the caller. Symbolic links are followed."""
    # O_NONBLOCK: opening a named pipe must not wait for a writer; the check below then refuses it
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    if os.path.isdir(path):  # Windows refuses to open a folder as "permission denied"
        raise NotARegularFile(f"{path} is a folder")
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)  # of the opened file itself, so it cannot be swapped in between
        if not stat.S_ISREG(info.st_mode):
            kind = "folder" if stat.S_ISDIR(info.st_mode) else "device, pipe or socket"
            raise NotARegularFile(f"{path} is not a regular file (it is a {kind})")
        if hasattr(os, "set_blocking"):  # a regular file after all: ordinary reads from here on
            os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def read_regular_file(path: str | Path, max_bytes: int, what: str = "file",
                      error: type[ForensicsError] = ForensicsError) -> bytes:
    """All bytes of a regular file of at most `max_bytes`; anything else raises `error` with a plain
    message naming `what` the file was meant to be (e.g. "findings file")."""
    name = printable(str(path))
    try:
        with open_regular_file(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            data = fh.read(max_bytes + 1) if size <= max_bytes else b""
    except NotARegularFile:
        raise error(f"The {what} {name} is not a regular file (it is a folder, device, pipe or socket).") from None
    except FileNotFoundError:
        raise error(f"The {what} {name} does not exist.") from None
    except OSError as exc:
        raise error(f"The {what} {name} cannot be read ({exc.strerror or exc}).") from None
    if size > max_bytes or len(data) > max_bytes:
        raise error(f"The {what} {name} is larger than {max_bytes:,} bytes; it is refused.")
    return data


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when both paths lead to one file (links and relative paths resolved); a missing path is
    compared by its resolved name."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_output_path(out: str | Path, protected: Iterable[str | Path], what: str = "output") -> Path:
    """Refuse an output path before any work is done: its folder must exist, it must not be a folder,
    and it must not be (or link to) any of the `protected` inputs (evidence files, the case file)."""
    out = Path(out)
    if out.is_dir():
        raise ForensicsError(f"The {what} {printable(str(out))} is a folder; give a file name.")
    folder = out.parent
    if not folder.is_dir():
        raise ForensicsError(f"The folder {printable(str(folder))} for the {what} {printable(str(out))} does "
                             "not exist; create it first.")
    for path in protected:
        if same_file(out, path):
            raise ForensicsError(f"The {what} {printable(str(out))} is the input {printable(str(path))}; refusing "
                                 "to overwrite an input. Choose another file name.")
    return out


@contextlib.contextmanager
def atomic_output(out: str | Path) -> Iterator[Path]:
    """A temporary path beside `out` to write to; renamed over `out` when the block ends without an
    error, removed otherwise. Renaming replaces the entry itself, so a link or pipe at `out` is
    replaced, never written through."""
    out = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the report from everyone else
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomically(out: str | Path, data: bytes) -> None:
    with atomic_output(out) as tmp:
        tmp.write_bytes(data)
