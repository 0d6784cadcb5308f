"""What the desktop hands the app when a link or file is opened with it: a share link for the receiver, or a record
file (a ``.smart-health-card``) to import. No Qt here: the launching process checks its argument before any window
or socket exists, and the running app checks again whatever reaches it from another launch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from vault.errors import MedvaultError

MAX_LINK = 16 * 1024  # far above any real link; a longer argument is not one


class NotALinkOrFile(MedvaultError, ValueError):
    # Neither the argument nor its file name is repeated: a file name can carry a patient's name.
    default_message = ("That is neither a share link (shlink:/ or medvault:/) nor a file that exists; "
                    "nothing was opened.")


@dataclass(frozen=True)
class Intake:
    kind: str    # "link": for the receiver; "file": to import
    value: str   # the link text, or the file's absolute path

    @property
    def reference(self) -> str:
        """A short fingerprint to tell intakes apart in messages without showing the link (it holds a key)."""
        return hashlib.sha256(self.value.encode()).hexdigest()[:12]

    def describe(self) -> str:
        if self.kind == "link":
            scheme = "medvault:/" if self.value.lower().startswith("medvault:/") else "shlink:/"
            return f"a {scheme} link (ref {self.reference})"
        return f"a {Path(self.value).suffix or 'record'} file (ref {self.reference})"


def classify(argument: str, cwd: Path | None = None) -> Intake:
    """The intake an argument stands for: a link, a ``file://`` URL or a path to an existing file."""
    from app.services.importing import is_link  # loads the importer: only when there is something to classify
    text = argument.strip()
    if not text or len(text) > MAX_LINK:
        raise NotALinkOrFile()
    if is_link(text):
        return Intake("link", text)
    if text.lower().startswith("file://"):
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise NotALinkOrFile()  # a file on another machine: not something to import by a click
        text = unquote(parts.path)
    elif ":/" in text[:40]:
        raise NotALinkOrFile()  # some other scheme (http, mailto, …)
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    if not path.is_file():
        raise NotALinkOrFile()
    return Intake("file", str(path.resolve()))
