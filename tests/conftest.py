"""Fixtures shared by several test modules."""
from __future__ import annotations

import socket
from typing import List

import pytest


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
