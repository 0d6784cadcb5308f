"""JSON from outside goes through orjson, which bounds nesting while it parses, so deep input is refused even when a
library has raised the process's recursion limit so far that a recursive parser would overflow the C stack
(py_ecc sets 100,000 on import); and what orjson treats differently from the standard library is made explicit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT
from vault import jsonsafe


def test_depth_is_bounded_by_the_parser_and_below_it_exactly():
    """orjson refuses nesting past 1,024 levels while it parses (no pre-scan, no recursion); a lower bound is
    measured on the result."""
    assert jsonsafe.loads(b"[" * 1024 + b"]" * 1024) is not None
    with pytest.raises(jsonsafe.JsonTooDeep):
        jsonsafe.loads(b"[" * 1025 + b"]" * 1025)
    with pytest.raises(jsonsafe.JsonTooDeep):
        jsonsafe.loads(b"[" * 100_000)                       # unclosed, and deep
    assert jsonsafe.loads('{"a": "[[[[{{{{[[[[[[[["}', max_depth=1) == {"a": "[[[[{{{{[[[[[[[["}
    with pytest.raises(jsonsafe.JsonTooDeep):
        jsonsafe.loads(b'{"a": [1, {"b": [[]]}]}', max_depth=4)
    assert jsonsafe.loads('{"a": [1, 2]}') == {"a": [1, 2]}
    with pytest.raises(jsonsafe.JsonRefused):
        jsonsafe.loads(b"{not json")


@pytest.mark.parametrize("text, words", [
    (b'{"a": NaN}', "NaN or Infinity"),
    (b'{"a": -Infinity}', "NaN or Infinity"),
    (b'{"a": "\\ud800"}', "lone UTF-16 surrogate"),
    (b'{"a": 1e400}', "too large"),
    (b"\xef\xbb\xbf{}", "byte order mark"),
    (b'{"a": "\xff"}', "not UTF-8"),
    (b"   ", "empty"),
])
def test_what_orjson_refuses_gets_its_own_reason(text, words):
    with pytest.raises(jsonsafe.JsonRefused) as err:
        jsonsafe.loads(text)
    assert words in err.value.reason


def test_whole_numbers_past_64_bits_are_caught_by_their_size():
    """orjson reads them as floats; every such float is at least HUGE, which the records walk refuses."""
    for literal in (b"18446744073709551616", b"-9223372036854775809", b"123456789012345678901234567890"):
        value = jsonsafe.loads(b"[" + literal + b"]")[0]
        assert isinstance(value, float) and abs(value) >= jsonsafe.HUGE
    assert jsonsafe.loads(b"[18446744073709551615, -9223372036854775808]") == [2 ** 64 - 1, -(2 ** 63)]


def test_stored_rows_of_older_versions_read_exactly():
    """Rows written through the standard library may hold NaN or whole numbers beyond 64 bits."""
    assert jsonsafe.loads_stored('{"v": 123456789012345678901234567890}') == {"v": 123456789012345678901234567890}
    value = jsonsafe.loads_stored('{"v": NaN}')["v"]
    assert value != value
    assert jsonsafe.loads_stored(b'{"v": [1, "x"]}') == {"v": [1, "x"]}


def test_canonical_bytes_match_the_standard_library_except_small_floats():
    value = {"b": [1, 2.5, {"z": None, "a": True}], "a": "é \u2028 \x00 \\ \"", "c": 1e16, "d": -0.0}
    standard = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    assert jsonsafe.canonical(value) == standard == jsonsafe.legacy_canonical(value)
    small = {"v": 1e-05, "w": 2.5e-07}
    assert jsonsafe.canonical(small) != json.dumps(small, sort_keys=True, separators=(",", ":")).encode()
    assert jsonsafe.legacy_canonical(small) == json.dumps(small, sort_keys=True, separators=(",", ":")).encode()


def test_every_outside_json_entry_point_survives_a_raised_recursion_limit(tmp_path):
    """Runs in a child process: a regression here would crash the interpreter, not just fail an assert."""
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    script = textwrap.dedent(f"""
        import sys
        import py_ecc  # raises the recursion limit to 100,000, as it does in the real app
        assert sys.getrecursionlimit() >= 100_000
        data = open({str(deep)!r}, "rb").read()
        from vault import jsonsafe
        from vault.records import jsonutil
        from vault.records.errors import NestingTooDeep
        from sync import fetch, receiver
        from sync.errors import ContentInvalid, FetchFailed
        for call, expected in ((lambda: jsonsafe.loads(data), jsonsafe.JsonTooDeep),
                               (lambda: jsonutil.loads(data), NestingTooDeep),
                               (lambda: jsonutil.loads(data, bound_depth=False), NestingTooDeep),
                               (lambda: receiver._loads_bounded(data), ContentInvalid),
                               (lambda: fetch.Response("u", 200, "application/json", data).json(), FetchFailed)):
            try:
                call()
            except expected:
                pass
            else:
                raise SystemExit("accepted")
        print("refused all")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "refused all"


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


from hypothesis import given, settings, strategies as st  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 63 - 1) | st.text(alphabet='[]{}"\\ab\n', max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\k', max_size=4), inner,
                                                                max_size=3),
    max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(value=_json, limit=st.integers(1, 12))
def test_the_bound_is_exact(value, limit):
    """Brackets, quotes and escapes inside strings never count; deeper than the limit is always refused, and
    anything within it is read back unchanged."""
    raw = json.dumps(value).encode()
    if _depth(value) > limit:
        with pytest.raises(jsonsafe.JsonTooDeep):
            jsonsafe.loads(raw, max_depth=limit)
    else:
        assert jsonsafe.loads(raw, max_depth=limit) == value
