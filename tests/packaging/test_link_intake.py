"""What the desktop hands medvault: links go to the receiver, existing files to the importer, anything else is
refused with one sentence that does not repeat the argument (a file name can carry a patient's name)."""

from __future__ import annotations

import pytest

from app.link_intake import NotALinkOrFile, classify
from tests.conftest import FIXTURES

CARD = FIXTURES / "shl-shc" / "spec" / "example-00-e-file.smart-health-card"


@pytest.mark.parametrize("link", [
    "shlink:/eyJ1cmwiOiJodHRwczovL2V4YW1wbGUub3JnIn0",
    "SHLINK:/eyJ1cmwiOiJodHRwczovL2V4YW1wbGUub3JnIn0",
    "medvault:/share/abc",
    "https://viewer.example.org/#shlink:/eyJ1cmwiOiJodHRwczovL2V4YW1wbGUub3JnIn0",
    "  shlink:/eyJ1cmwiOiJodHRwczovL2V4YW1wbGUub3JnIn0\n",
])
def test_links_go_to_the_receiver_as_given(link):
    intake = classify(link)
    assert intake.kind == "link" and intake.value == link.strip()


def test_a_card_file_goes_to_the_importer_by_path_or_file_url(tmp_path):
    assert classify(str(CARD)) == classify(CARD.as_uri())
    intake = classify(str(CARD))
    assert intake.kind == "file" and intake.value == str(CARD.resolve())
    spaced = tmp_path / "my card #1.smart-health-card"
    spaced.write_bytes(CARD.read_bytes())
    assert classify(spaced.as_uri()).value == str(spaced)   # percent-encoded by the file manager
    assert classify(spaced.name, cwd=tmp_path).value == str(spaced)


@pytest.mark.parametrize("argument", [
    "", "   ", "Buster_Hoeger_missing.json", "http://example.org/x", "mailto:someone@example.org",
    "file://otherhost/etc/hosts", "shlink:/" + "A" * 20000,
])
def test_anything_else_is_refused_without_echoing_it(argument, tmp_path):
    with pytest.raises(NotALinkOrFile) as caught:
        classify(argument, cwd=tmp_path)
    assert "nothing was opened" in caught.value.user_message
    assert "Buster" not in caught.value.user_message


def test_a_folder_is_not_a_file(tmp_path):
    with pytest.raises(NotALinkOrFile):
        classify(str(tmp_path))


def test_descriptions_name_the_kind_and_a_fingerprint_never_the_value():
    link = "shlink:/eyJrZXkiOiJzZWNyZXQta2V5LWJ5dGVzIn0"
    text = classify(link).describe()
    assert text.startswith("a shlink:/ link (ref ") and "eyJ" not in text
    card = classify(str(CARD)).describe()
    assert ".smart-health-card file" in card and "example-00" not in card
