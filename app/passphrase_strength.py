"""How guessable a new passphrase is, by zxcvbn (the only module importing it), and what medvault lets through.

zxcvbn estimates guesses the way cracking tools spend them: common passwords, dictionary words, names, dates,
keyboard runs and l33t swaps first, so "Password123!" is weak however many character classes it mixes.

The policy, and why. Whoever copies the vault folder (a backup disk, a synced folder, a stolen laptop) can guess
offline for as long as they like; the passphrase and Argon2id's cost are all that stand in the way. zxcvbn's
``offline_slow_hashing_1e4_per_second`` scenario (ten thousand guesses a second, a well-equipped attacker against a
slow hash) is that attacker, and the time it gives is what the user is told. So:

- scores 0 to 2 (fewer than a hundred million guesses: seconds to a few hours) are refused. zxcvbn rates them as
  protection against online guessing at best, and a vault file never meets an online attacker. A "use it anyway"
  button would be clicked through by exactly the people it is there to protect, for records that stay sensitive
  for life;
- score 3 (up to ten billion guesses: hours to days) needs an explicit confirmation that names that time, because
  the patient may have reasons we cannot see (a passphrase shared with a carer, typed on a phone);
- score 4 passes.

No Qt here, so the policy is tested without a window. The vault itself enforces only the minimum length: the CLI
and tests create vaults without this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from zxcvbn import zxcvbn

from vault.store import MIN_PASSPHRASE_CHARS

# zxcvbn's run time grows quickly with length and it refuses more than this; the first 72 characters already
# take far more guesses than any score threshold, so a longer passphrase is judged by them.
_ESTIMATE_CHARS = 72
# Words an attacker would try first against this particular app.
_CONTEXT_WORDS = ["medvault", "vault", "medical", "records", "health", "passphrase", "password", "recovery"]
LABELS = ("Very weak", "Weak", "Weak", "Fair", "Strong")
_METER_FULL_LOG10 = 14  # guesses at which the meter is full; score 4 starts at 10^10, about 70 %


class Verdict(Enum):
    REFUSED = "refused"
    CONFIRM = "confirm"
    ACCEPTED = "accepted"


@dataclass(frozen=True)
class Strength:
    score: int  # zxcvbn's 0-4; -1 while too short to judge
    meter: int  # 0-100, from the estimated guesses, so the bar moves with every character that helps
    label: str
    advice: str  # zxcvbn's warning and suggestions, in plain words, or the reason for the verdict
    guess_time: str  # how long the offline attacker above would need, e.g. "4 seconds"
    verdict: Verdict


def assess(passphrase: str) -> Strength:
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        left = MIN_PASSPHRASE_CHARS - len(passphrase)
        advice = (f"Use at least {MIN_PASSPHRASE_CHARS} characters ({left} more). "
                  "A few unrelated words work well." if passphrase else
                  f"Use at least {MIN_PASSPHRASE_CHARS} characters; a few unrelated words work well.")
        return Strength(-1, min(len(passphrase) * 2, 15), "Too short", advice, "", Verdict.REFUSED)
    result = zxcvbn(passphrase[:_ESTIMATE_CHARS], user_inputs=_CONTEXT_WORDS)
    score = int(result["score"])
    guess_time = str(result["crack_times_display"]["offline_slow_hashing_1e4_per_second"])
    feedback = result["feedback"]
    words = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
    advice = " ".join(w.strip() for w in words if w and w.strip())
    if score <= 2:
        verdict = Verdict.REFUSED
        advice = (f"Too easy to guess: with a copy of your vault, a well-equipped attacker could find it in "
                  f"{guess_time}. " + (advice or "Add another word or two; uncommon words are better."))
    elif score == 3:
        verdict = Verdict.CONFIRM
        advice = (f"With a copy of your vault, a well-equipped attacker could find it in {guess_time}. "
                  + (advice or "Another uncommon word would make it much stronger."))
    else:
        verdict = Verdict.ACCEPTED
        advice = advice or f"Good: guessing it would take {guess_time} even with a copy of your vault."
    meter = max(0, min(100, round(float(result["guesses_log10"]) * 100 / _METER_FULL_LOG10)))
    return Strength(score, meter, LABELS[score], advice, guess_time, verdict)
