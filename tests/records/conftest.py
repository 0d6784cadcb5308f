"""Fixtures of the records tests: real vaults (SQLCipher on disk, cheap KDF) from the shared ``vault_factory``."""

from __future__ import annotations

import itertools

import pytest

from vault.records.importer import ImportOptions, ImportService

_names = itertools.count()


@pytest.fixture
def make_vault(vault_factory):
    return lambda: vault_factory(f"records-vault-{next(_names)}")


@pytest.fixture
def vault(unlocked_vault):
    return unlocked_vault


@pytest.fixture
def importer(vault):
    return ImportService(vault, ImportOptions())
