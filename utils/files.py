"""Writing files so that nothing half-written is ever left behind."""

import os
import tempfile


def current_umask():
    mask = os.umask(0)  # reading the umask requires setting it; restore at once
    os.umask(mask)
    return mask


def write_atomically(path, write):
    """Calls `write(binary_stream)` on a temp file beside `path`, syncs it, then renames it over `path`.

    A process killed at any moment leaves either the old file or the new one, never a truncated one.
    """
    folder, name = os.path.split(os.path.abspath(path))
    handle, tmp_path = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def ensure_writable_folder(path):
    """Creates `path` if needed and proves a file can be written there; OSError otherwise."""
    os.makedirs(path, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
        pass
