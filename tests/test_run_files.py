"""utils/run/files.py: atomic writes whose errors name the file, even when the system error names none."""

import os

import numpy as np
import pytest

from utils.run.files import describe_os_error, write_atomically


def test_a_short_write_without_errno_names_the_file_and_the_likely_cause(tmp_path):
    """numpy reports a full disk during np.save as 'cannot write N requested and M written', without errno."""
    path = str(tmp_path / "4_data.npy")

    def short_write(stream):
        raise OSError("cannot write 705600 requested and 302976 written")

    with pytest.raises(OSError) as failure:
        write_atomically(path, short_write)
    line = describe_os_error(failure.value)
    assert line.startswith(f"{path}: cannot write 705600 requested and 302976 written") and "disk full" in line
    assert os.listdir(tmp_path) == []  # no temporary left behind


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = str(tmp_path / "a.npy")
    write_atomically(path, lambda stream: np.save(stream, np.arange(3)))
    assert np.load(path).tolist() == [0, 1, 2]
