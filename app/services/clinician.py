"""The clinician's profile: a vault in clinician mode, the name and organisation on its card, and whether the consent
network knows it as a practitioner. No Qt here.

Clinician mode is a setting of the vault (``profile``), nothing more: the same vault opens shares, keeps copies and
writes notes back. The name and organisation are the clinician's own (not a patient's), kept inside the encrypted
database like every setting, and go on the card patients scan to direct a share to them. Registration is made by a
member of the consent network (the clinician's organisation) from that card; the clinician's app only reads it.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sync.errors import SyncError

PROFILE_SETTING = "profile"
DEFAULT_NAME = "medvault user"

REGISTERED, DEACTIVATED, NOT_REGISTERED, NOT_CHECKED = "registered", "deactivated", "not registered", "not checked"


@dataclass(frozen=True)
class Profile:
    clinician: bool = False
    name: str | None = None
    organisation: str | None = None

    def as_json(self) -> dict:
        return asdict(self)


class ProfileInvalid(SyncError):
    default_message = "The profile could not be saved; nothing was changed."


def _clean(value: str | None, what: str, required: bool) -> str | None:
    from sync.links import MAX_LABEL
    text = " ".join((value or "").split())
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise ProfileInvalid(f"The {what} contains control characters; nothing was changed.")
    if not text:
        if required:
            raise ProfileInvalid(f"A clinician's card needs a {what}; nothing was changed.")
        return None
    if len(text) > MAX_LABEL:
        raise ProfileInvalid(f"The {what} is longer than {MAX_LABEL} characters; nothing was changed.")
    return text


def load(vault: Any) -> Profile:
    raw = vault.setting(PROFILE_SETTING)
    if not raw:
        return Profile()
    try:
        value = json.loads(raw)
        return Profile(bool(value.get("clinician")), value.get("name") or None, value.get("organisation") or None)
    except (ValueError, AttributeError):
        return Profile()


def checked(*, clinician: bool, name: str | None = None, organisation: str | None = None) -> Profile:
    """The profile these answers make, or ``ProfileInvalid`` with the sentence saying what is wrong."""
    return Profile(clinician, _clean(name, "name", clinician), _clean(organisation, "organisation", False))


def save(vault: Any, *, clinician: bool, name: str | None = None, organisation: str | None = None) -> Profile:
    """Switch clinician mode on (a name is then required; the organisation is optional) or off, keeping the name."""
    profile = checked(clinician=clinician, name=name, organisation=organisation)
    vault.set_setting(PROFILE_SETTING, json.dumps(profile.as_json(), sort_keys=True),
                      mode="clinician" if clinician else "patient")
    return profile


def card(vault: Any, name: str | None = None) -> str:
    """This vault's identity card (``medvault:/`` text): the profile's name and organisation unless ``name`` is
    given, "medvault user" when there is neither."""
    from sync import links
    profile = load(vault)
    return links.build_card(vault.identity_keys.ed25519_seed, name=name or profile.name or DEFAULT_NAME,
                            organisation=profile.organisation, address=vault.identity.eth_address,
                            iat=int(vault.now().timestamp()))


@dataclass(frozen=True)
class Registration:
    state: str          # REGISTERED, DEACTIVATED, NOT_REGISTERED or NOT_CHECKED
    sentence: str

    @property
    def checked(self) -> bool:
        return self.state != NOT_CHECKED


def registration(vault: Any) -> Registration:
    """Whether the consent network knows this vault's key as an active practitioner; "not checked" (with why) when
    no network is set up or it cannot be reached, never a guess."""
    from sync import consent_service
    from sync.errors import ChainError
    try:
        settings = consent_service.load_settings(vault)
        if settings is None:
            return Registration(NOT_CHECKED, "Not checked: no consent network is set up, so patients' apps cannot "
                                             "look you up; they can still confirm your card in person.")
        state = consent_service.connect(settings).practitioner_state(vault.identity.eth_address, vault.identity.did)
    except ChainError as exc:
        return Registration(NOT_CHECKED, f"Not checked: {exc.user_message}")
    if state == "active":
        return Registration(REGISTERED, "Registered: the consent network lists you as an active practitioner, so "
                                        "patients' apps show your notes as signed by a clinician.")
    if state == "inactive":
        return Registration(DEACTIVATED, "Deactivated: your registration as a practitioner was withdrawn; patients' "
                                         "apps show your notes as signed by an unknown key.")
    return Registration(NOT_REGISTERED, "Not registered: ask your organisation (a member of the consent network) to "
                                        "register your card ('medvault chain register CARD'); until then patients' "
                                        "apps show your notes as signed by an unknown key.")


def register(member_vault: Any, card_source: Any) -> Any:
    """A member of the consent network registers a clinician's card (text, file, QR image or ``Card``) as a
    practitioner; returns the transaction's result."""
    from app.services import chain, sharing
    parsed = sharing.read_card(card_source) if isinstance(card_source, (str, Path)) else card_source
    return chain.register_practitioner(member_vault, parsed)
