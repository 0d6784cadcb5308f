"""A rough passphrase strength estimate for the meter on the create page (no Qt, so it is easy to test).

It estimates guessing entropy from length and the kinds of characters used, and discounts repeats and runs;
it is a nudge towards long passphrases, not a guarantee. The vault refuses fewer than 10 characters outright.
"""

from __future__ import annotations

import math
import string

LEVELS = ((0, "Too short"), (40, "Weak"), (60, "Fair"), (80, "Strong"), (100, "Very strong"))


def estimate_bits(passphrase: str) -> float:
    if not passphrase:
        return 0.0
    pool = 0
    if any(c in string.ascii_lowercase for c in passphrase):
        pool += 26
    if any(c in string.ascii_uppercase for c in passphrase):
        pool += 26
    if any(c in string.digits for c in passphrase):
        pool += 10
    if any(c in string.punctuation or c == " " for c in passphrase):
        pool += 33
    if any(ord(c) > 127 for c in passphrase):
        pool += 100
    # Repeated characters and simple runs ("aaaa", "1234") add little for a guesser.
    effective = 1
    for prev, cur in zip(passphrase, passphrase[1:]):
        if cur != prev and abs(ord(cur) - ord(prev)) != 1:
            effective += 1
        else:
            effective += 0.25
    return effective * math.log2(max(pool, 2))


def label(passphrase: str) -> tuple[int, str]:
    """(score 0-100, label) for the meter."""
    if len(passphrase) < 10:
        return min(30, len(passphrase) * 3), LEVELS[0][1]
    bits = estimate_bits(passphrase)
    text = LEVELS[1][1]
    for threshold, name in LEVELS[1:]:
        if bits >= threshold:
            text = name
    return min(100, int(bits)), text
