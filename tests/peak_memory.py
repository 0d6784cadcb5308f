"""Run a piece of Python in a child process and measure how much its peak memory grew while it ran.

Memory tests need their own process: the test runner's peak is whatever the heaviest earlier test reached. The
child is capped (RLIMIT_AS) so that a regression fails with a MemoryError instead of pulling the machine down.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAP_BYTES = 3 << 30

_PRELUDE = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

_MEASURE = """
_baseline = _peak_mb()
try:
    _outcome = run()
    _error = None
except MemoryError:
    _outcome, _error = None, "MemoryError"
except Exception as _exc:
    _outcome, _error = None, {{"type": type(_exc).__name__, "message": getattr(_exc, "user_message", str(_exc))}}
print(json.dumps({{"baseline_mb": _baseline, "peak_mb": _peak_mb(), "outcome": _outcome, "error": _error}}))
"""


def measure(setup: str, run_body: str, timeout: float = 600) -> dict:
    """``setup`` runs first (imports, building inputs); then ``run()``, whose body is ``run_body``, is measured:
    the result has ``grew_mb`` (peak growth during ``run``), ``error`` (type and sentence of what it raised)
    and ``outcome`` (what it returned)."""
    code = (_PRELUDE.format(cap=CAP_BYTES) + textwrap.dedent(setup) + "\ndef run():\n"
            + textwrap.indent(textwrap.dedent(run_body), "    ") + _MEASURE.format())
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={"PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"the measured child failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    result = json.loads(lines[-1])
    result["grew_mb"] = result["peak_mb"] - result["baseline_mb"]
    return result


# ---- inputs built to turn a little compressed text into as many Python objects as possible --------------------

def bundle_of_empty_entries(n: int) -> bytes:
    """A FHIR Bundle of ``n`` empty entries: 3 bytes of text, and a 64-byte dict, each."""
    return b'{"resourceType":"Bundle","type":"collection","entry":[' + b"{}," * (n - 1) + b"{}]}"


def health_card_of_empty_entries(n: int) -> str:
    """A SMART Health Card (compact JWS, unsigned) whose deflated payload holds such a Bundle."""
    payload = (b'{"iss":"https://issuer.example","nbf":1,"vc":{"type":["https://smarthealth.cards#health-card"],'
               b'"credentialSubject":{"fhirVersion":"4.0.1","fhirBundle":' + bundle_of_empty_entries(n) + b"}}}")
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = c.compress(payload) + c.flush()

    def b64u(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    header = b64u(json.dumps({"alg": "ES256", "zip": "DEF", "kid": "k"}).encode())
    return f"{header}.{b64u(deflated)}.{b64u(bytes(64))}"
