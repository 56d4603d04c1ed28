"""Writing files so that nothing half-written is ever left behind."""

import errno
import os
import tempfile
import threading


_umask = {}
_umask_lock = threading.Lock()


def current_umask():
    """The process's umask, read once: reading it means setting it for a moment, which another thread
    creating a file at that moment (checkpoints are written by one) would see."""
    with _umask_lock:
        if "mask" not in _umask:
            _umask["mask"] = os.umask(0)
            os.umask(_umask["mask"])
        return _umask["mask"]


def naming_the_file(error, path):
    """`error` with `path` as its file name when it names none (a full disk's write error names no file;
    numpy's short write, "cannot write N requested and M written", has not even an errno)."""
    names_a_real_file = bool(error.filename) and not str(error.filename).endswith(".tmp")
    if names_a_real_file:
        return error
    if error.errno is None:
        return OSError(errno.EIO, f"{error}; is the disk full or a file-size limit reached?", path)
    return OSError(error.errno, error.strerror, path)


def is_temporary(name):
    """True for the temporaries of `write_atomically` (`.<name>.<random>.tmp`)."""
    return name.startswith(".") and name.endswith(".tmp")


def write_atomically(path, write):
    """Calls `write(binary_stream)` on a temp file beside `path`, syncs it, then renames it over `path`.

    A process killed at any moment leaves either the old file or the new one, never a truncated one
    (SIGKILL can leave the temp file `.<name>.<random>.tmp`; run folders remove those at start).
    An OSError names `path`.
    """
    folder, name = os.path.split(os.path.abspath(path))
    try:
        handle, tmp_path = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    except OSError as error:
        raise naming_the_file(error, path) from None
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp_path, path)
    except BaseException as error:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        if isinstance(error, OSError):
            raise naming_the_file(error, path) from None
        raise


def append_line(path, line):
    """Appends `line` plus a newline to a text file; first ends a line cut short earlier (e.g. by a full
    disk), so the new record never glues onto a torn one. An OSError names `path`."""
    try:
        with open(path, "a+b") as stream:
            stream.seek(0, os.SEEK_END)
            if stream.tell() > 0:
                stream.seek(stream.tell() - 1)
                if stream.read(1) != b"\n":
                    stream.write(b"\n")
            stream.write(line.encode() + b"\n")
    except OSError as error:
        raise naming_the_file(error, path) from None


def describe_os_error(error):
    """One line for an OSError: `<file>: <reason>` when it names a file."""
    if error.filename and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)


def ensure_writable_folder(path):
    """Creates `path` if needed and proves a file can be written there; OSError otherwise."""
    os.makedirs(path, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
        pass


def write_json(path, record, indent=2):
    """`record` as JSON (one trailing newline), written atomically."""
    import json

    write_atomically(path, lambda stream: stream.write((json.dumps(record, indent=indent) + "\n").encode()))
    return path


def file_sha256(path):
    """sha256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
