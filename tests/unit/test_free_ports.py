"""Free loopback ports for the processes the stack and the test tiers start."""

from __future__ import annotations

import socket

import pytest

from services.stack.process import free_port, free_ports

pytestmark = pytest.mark.unit


def test_ports_picked_together_are_distinct_and_bindable() -> None:
    ports = free_ports(24)
    assert len(set(ports)) == 24
    held = []
    try:
        for port in ports:  # each one is free once picking is over
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind(("127.0.0.1", port))
    finally:
        for sock in held:
            sock.close()


def test_a_single_port_is_free() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        assert sock.getsockname()[1] == port
