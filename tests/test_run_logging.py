"""utils/run/logging.py: RunLogger's metrics.jsonl tolerates torn lines and is rewritten atomically."""

import errno
import os

import pytest

from utils.run.logging import RunLogger


def test_metrics_file_tolerates_torn_lines_and_is_rewritten_atomically(tmp_path, monkeypatch):
    logger = RunLogger(str(tmp_path), {}, "p", mode="disabled")
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0, "a": 1.0}\n{"epoch": 1, "a": 2.0}\n{"epoch": 2, "a')
    logger.log({"a": 3.0}, 2)  # a record after a torn one starts on its own line
    assert (tmp_path / "metrics.jsonl").read_text().splitlines()[-1] == '{"epoch": 2, "a": 3.0}'

    def full_disk(path, write):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr("utils.run.logging.write_atomically", full_disk)
    with pytest.raises(OSError):
        logger.drop_epochs_from(1)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4  # a failed rewrite changes nothing
    monkeypatch.undo()
    logger.drop_epochs_from(1)
    assert (tmp_path / "metrics.jsonl").read_text() == '{"epoch": 0, "a": 1.0}\n'
    assert os.listdir(tmp_path) == ["metrics.jsonl"]
