"""Fixtures shared by several test modules."""
from __future__ import annotations

import importlib.util
import socket
from pathlib import Path
from types import ModuleType
from typing import List

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str) -> ModuleType:
    """Import train.py / test.py by path (`import test` could find the standard library's `test` package)."""
    spec = importlib.util.spec_from_file_location(f"_cli_script_{name}", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="session")
def train_main():
    return load_script("train").main


@pytest.fixture(scope="session")
def test_main():
    return load_script("test").main


@pytest.fixture
def forbid_network(monkeypatch) -> List[tuple]:
    """Make every outgoing connection attempt fail, and record it: the returned list must stay empty."""
    attempts: List[tuple] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("test: network access is forbidden here")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts
