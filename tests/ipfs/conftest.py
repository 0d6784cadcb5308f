"""Fixtures for content addressing and the IPFS backends: the CID vectors and a real js-ipfs node."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# scripts/test runs `python -m pytest`, which puts the project root on sys.path; a bare `pytest` does not, and
# these tests import the shared peer helpers as `tests.peers...`.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.peers.ipfs import running_ipfs_node  # noqa: E402


@pytest.fixture(scope="session")
def ipfs_node():
    """A real js-ipfs daemon on loopback for the whole session, stopped by its process group afterwards."""
    with running_ipfs_node() as node:
        yield node
