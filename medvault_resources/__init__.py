"""The data files medvault ships: the consent contract's compiled artifact, the demo's fictional records and the
app icon.

Every reader goes through ``importlib.resources`` rather than building paths from ``__file__``: an installed wheel
and a frozen bundle have no checkout beside them, and a zip or frozen importer may not even have real files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from importlib import resources
from pathlib import Path

APP_ID = "org.medvault.Medvault"  # the reverse-DNS id desktops know the app by (.desktop, icon, AppStream)


def _entry(folder: str, name: str) -> resources.abc.Traversable:
    return resources.files(__name__) / folder / name


def consent_registry_artifact() -> str:
    """The compiled ConsentRegistry contract (ABI, bytecode, compiler settings) as JSON text."""
    return _entry("contracts", "ConsentRegistry.json").read_text(encoding="utf-8")


def consent_registry_source() -> str:
    return _entry("contracts", "ConsentRegistry.sol").read_text(encoding="utf-8")


@contextmanager
def demo_files(names: Sequence[str]) -> Iterator[list[Path]]:
    """Real file paths to demo data files (fictional records), valid inside the ``with`` block: the importer reads
    files by path, and a resource is only guaranteed to be a file for that long."""
    with ExitStack() as stack:
        yield [stack.enter_context(resources.as_file(_entry("demo", name))) for name in names]


def app_icon_svg() -> bytes:
    """The app icon, drawn as SVG; PNG sizes are rendered from it when a bundle is built."""
    return _entry("icons", "medvault.svg").read_bytes()
