"""models/training/checkpoints.py: a network file that cannot be written is a StorageError that says what failed
(the path and the system's reason) and the remedy for that reason (issue 22, item 8: not always "free some
space")."""
from __future__ import annotations

import errno
import os

import pytest
import torch

from models.training.checkpoints import save_network_file
from util.errors import StorageError

STATE = {"w": torch.zeros(2)}


def _failing_save(monkeypatch: pytest.MonkeyPatch, number: int) -> None:
    def save(obj, f, *args, **kwargs):
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(torch, "save", save)


@pytest.mark.parametrize("number, advice", [
    (errno.ENOSPC, "; free some space or choose another --checkpoints_dir (safe)"),
    (errno.EROFS, "; make the folder writable or choose another --checkpoints_dir (safe)"),
    (errno.EFBIG, "; the file is larger than this filesystem or the file-size limit (ulimit -f) allows: choose "
                  "another --checkpoints_dir (safe)"),
    (errno.EIO, "; choose another --checkpoints_dir (safe)"),
])
def test_the_message_names_the_file_the_reason_and_its_remedy(tmp_path, monkeypatch, number, advice) -> None:
    _failing_save(monkeypatch, number)
    path = tmp_path / "latest_net_G.pth"
    with pytest.raises(StorageError) as info:
        save_network_file(STATE, str(path), "safe")
    assert str(info.value) == f"cannot write {path}: {os.strerror(number)}{advice}"
    assert os.listdir(tmp_path) == []


def test_a_folder_removed_meanwhile_is_not_called_a_full_disk(tmp_path) -> None:
    """A real failure, no mocks: the run's folder is gone (what another run's tidying could do before issue 22)."""
    path = tmp_path / "removed" / "latest_net_G.pth"
    with pytest.raises(StorageError) as info:
        save_network_file(STATE, str(path), "safe")
    message = str(info.value)
    assert message.startswith(f"cannot write {path}: No such file or directory; the folder or the file being "
                              f"written was removed meanwhile"), message
    assert "space" not in message
