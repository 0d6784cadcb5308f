"""Every CID published in the shared fixtures' cid/vectors.json (Kubo's own profile tests), recomputed locally."""

from __future__ import annotations

import pytest

from sync.cid import PROFILES, compute_cid
from tests.ipfs.cidvectors import CID_FIXTURES, ChaChaStream, load_vectors, vector_input

VECTORS = load_vectors()["vectors"]
LARGE = 100 * 1024 * 1024


def _id(v: dict) -> str:
    return f"{v['profile']}:{v['name']}"


def _params():
    for v in VECTORS:
        marks = [pytest.mark.slow, pytest.mark.timeout(600)] if v["size"] > LARGE else []
        yield pytest.param(v, id=_id(v), marks=marks)


def test_fixture_profiles_are_the_ones_implemented():
    profiles = load_vectors()["profiles"]
    assert set(profiles) <= set(PROFILES)
    for name, spec in profiles.items():
        mine = PROFILES[name]
        assert (mine.cid_version, mine.raw_leaves, mine.chunk_size, mine.max_links, mine.layout) == (
            spec["cid_version"], spec["raw_leaves"], spec["chunk_size"], spec["max_links"], spec["layout"])


@pytest.mark.parametrize("vector", list(_params()))
def test_vector_cid_streamed(vector):
    # Streamed from a file object: the 1 GiB inputs are generated chunk by chunk, never held whole.
    assert compute_cid(vector_input(vector), PROFILES[vector["profile"]]) == vector["cid"]


@pytest.mark.parametrize("vector", [pytest.param(v, id=_id(v)) for v in VECTORS if v["size"] <= LARGE])
def test_vector_cid_from_bytes(vector):
    data = vector_input(vector).read()
    assert len(data) == vector["size"]
    assert compute_cid(data, PROFILES[vector["profile"]]) == vector["cid"]


@pytest.mark.parametrize("vector", [pytest.param(v, id=_id(v)) for v in VECTORS if v["file"]])
def test_stored_inputs_match_the_recipe(vector):
    # Proves the generator follows the vectors' recipe, so the large generated inputs are the intended ones.
    path = CID_FIXTURES / vector["file"]
    if not path.exists():
        pytest.fail(f"fixture input missing: {path}", pytrace=False)
    stored = path.read_bytes()
    assert stored == vector_input(vector).read()
    assert compute_cid(stored, PROFILES[vector["profile"]]) == vector["cid"]


def test_chacha_recipe_is_a_keystream_not_zeros():
    # Guards the generator itself: an all-zero or repeating input would still hash, but to the wrong vectors.
    block = ChaChaStream("v0-seed", 4096).read()
    assert len(block) == 4096 and block.count(0) < 100 and block[:64] != block[64:128]
