"""``medvault demo``: the whole story on the embedded defaults, headless, in a temporary folder.

A patient vault imports a Synthea patient (fictional), a clinician vault is set up in clinician mode, a consent
registry runs on an in-process EVM (eth-tester), and every step after that goes through the same services the
desktop app uses: the patient shares a health summary with the clinician only, by a QR image; the clinician's
medvault reads the PNG (zxing-cpp), verifies and opens the share through the patient's embedded gateway and logs the
access on chain; the clinician writes a note and a blood pressure back, signed, encrypted to the patient and handed
over as a QR; the patient imports it as clinician-signed (checked against the practitioner registry), revokes the
share, and the clinician's next open is refused. Each step prints what was verified.

No daemon and no network are needed (gateways listen on loopback only); nothing outside the folder is touched, and
no health data is printed: counts, kinds and checks only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any

# the fictional patient and the organisation and practitioner bundles its references point at, in import order
DEMO_FILES = ("synthea-hospitals.json", "synthea-practitioners.json", "synthea-patient.json")
CLINICIAN = ("Dr Demo", "Demo Clinic")
NOTE = ("Seen today with the health summary you shared. Blood pressure is in range; carry on with the current "
        "medicines and come back for a review in six months.")
BLOOD_PRESSURE = (128, 82)


def demo_files() -> contextlib.AbstractContextManager[list[Path]]:
    """Real file paths of the demo's records, valid inside the ``with`` block (read from the installed
    medvault_resources package, so the demo runs from a wheel or the desktop bundle too)."""
    import medvault_resources
    return medvault_resources.demo_files(DEMO_FILES)


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="the whole story on the embedded defaults, headless (fictional data)")
    p.add_argument("--keep", metavar="DIR", help="build the demo in DIR and keep it (default: a temporary folder)")
    p.add_argument("--kdf-profile", default="default", help=argparse.SUPPRESS)  # the test suite's cheap profile
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace, ctx: Any) -> int:
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        return _story(Path(args.keep), ctx, args.kdf_profile)
    with tempfile.TemporaryDirectory(prefix="medvault-demo-") as tmp:
        return _story(Path(tmp), ctx, args.kdf_profile)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Party:
    """A vault as a Session, with the loopback gateway that serves what it hands over."""

    def __init__(self, folder: Path, kdf_profile: str) -> None:
        from app.services import Session
        from sync import shares
        from vault.store import Vault
        vault, _recovery_key = Vault.create(folder, f"demo passphrase for {folder.name}", kdf_profile=kdf_profile)
        self.session = Session(vault)
        self.port = _free_port()
        self.gateway_url = f"http://127.0.0.1:{self.port}"
        shares.set_gateway_setting(vault, self.gateway_url)
        self._gateway: Any = None

    @property
    def vault(self) -> Any:
        return self.session.vault

    def serve(self) -> None:
        if self._gateway is None:
            self._gateway = self.session.serve(port=self.port)

    def close(self) -> None:
        if self._gateway is not None:
            self._gateway.stop()
        self.session.close()


def _short(text: str, keep: int = 10) -> str:
    return text if len(text) <= 2 * keep + 1 else f"{text[:keep]}\u2026{text[-keep:]}"


def _story(root: Path, ctx: Any, kdf_profile: str) -> int:
    from sync.chain import IN_PROCESS_SCHEME, Chain
    name = f"demo-{uuid.uuid4().hex[:8]}"
    evm = Chain.in_process(publish_as=name)
    parties: list[_Party] = []
    try:
        return _steps(root, ctx, kdf_profile, evm, IN_PROCESS_SCHEME + name, parties)
    finally:
        for party in parties:
            party.close()
        Chain.withdraw_in_process(name)


def _steps(root: Path, ctx: Any, kdf_profile: str, evm: Any, rpc: str, parties: list) -> int:
    from app.services import chain, clinician, sharing, writeback
    from sync import links, qr
    from sync.chain import Sender
    from sync.errors import SyncError
    from vault.records import describe

    say = ctx.out
    say("1. The patient creates an encrypted vault (Argon2id, SQLCipher) and imports a Synthea record file "
        "(a fictional patient) with the organisations and practitioners it refers to.")
    patient = _Party(root / "patient", kdf_profile)
    parties.append(patient)
    with demo_files() as files:
        outcomes = patient.session.import_files(files)
    if not all(o.ok for o in outcomes):
        say("   Unexpected: the demo data did not import: " + "; ".join(o.sentence for o in outcomes if not o.ok))
        return 1
    say(f"   Imported {sum(o.report.added for o in outcomes)} records from {len(outcomes)} files; each file's SHA-256 "
        "and the import are in the vault's audit log.")

    say("2. The clinician creates a vault in clinician mode; their name and organisation go on their identity card.")
    doctor = _Party(root / "clinician", kdf_profile)
    parties.append(doctor)
    doctor.session.set_profile(clinician_mode=True, name=CLINICIAN[0], organisation=CLINICIAN[1])
    card_text = doctor.session.card()
    qr.write_png(card_text, root / "card.png")
    card = links.card_from_link(qr.decode_file(root / "card.png"))
    say(f"   Card {_short(card.did, 14)} for {card.name} ({card.organisation}), self-signed, as a QR (card.png) "
        "that the patient scans.")

    say("3. A consortium chain (here an in-process EVM) holds the consent registry; the clinic, a member, registers "
        f"{card.name}'s card as a practitioner.")
    operator = Sender(node_account=evm.node_accounts()[0])
    registry = evm.deploy(operator)
    for party in (patient, doctor):
        chain.connect(party.vault, rpc, registry.address, pay_with_node_account=True)
    registry.register_practitioner(operator, card.address, card.did)
    state = clinician.registration(doctor.vault)
    say(f"   The clinician's app checks its registration: {state.sentence}")
    if state.state != clinician.REGISTERED:
        return 1

    say(f"4. The patient shares a health summary (IPS) with {card.name} only, for 7 days, as a QR code.")
    outcome = patient.session.create_share(sharing.selection(ips=True), expires="7d",
                                           label=f"Summary for {card.name}", recipient=card)
    patient.serve()
    qr.write_png(outcome.link, root / "share.png")
    share = outcome.created
    say(f"   {len(share.resource_ids)} records encrypted (AES-256-GCM) and addressed by CID {_short(share.cid)}; "
        f"the key sealed to the clinician's card; QR image share.png; consent on the chain: {outcome.chain}.")

    say("5. The clinician scans the QR image: zxing-cpp reads the PNG, medvault verifies the link, checks the "
        "consent on chain, fetches the file from the patient's gateway, recomputes its CID and decrypts it.")
    scanned = qr.decode_file(root / "share.png")
    opened = doctor.session.open_link(scanned, allow_local_http=True, check_chain=True)
    for check in opened.checks:
        say(f"   {check.name:<14} {check.status:<14} {check.detail}")
    counts = {}
    for bundle in opened.bundles:
        for e in bundle.get("entry", []):
            t = e["resource"]["resourceType"]
            if t not in ("Consent", "Composition"):
                counts[t] = counts.get(t, 0) + 1
    say(f"   The clinician sees {sum(counts.values())} records: "
        + ", ".join(f"{n} {t}" for t, n in sorted(counts.items())) + ".")
    receipts = [r for r in doctor.session.chain_status().outbox if r["kind"] == "access"]
    say(f"   The access receipt, signed by the clinician, is {receipts[-1]['state'] if receipts else 'missing'} "
        f"on the chain{' in block ' + str(receipts[-1]['block']) if receipts and receipts[-1]['block'] else ''}.")

    log = patient.session.share_accesses()
    seen = log.opened.get(share.id, [])
    say(f"6. The patient sees who opened the share: {len(seen)} signed access receipt(s) on chain"
        + (f", from {seen[0].who} (block {seen[0].block})." if seen else "."))

    say(f"7. {card.name} writes back a note and a blood pressure reading: FHIR R4 resources about the patient, with a "
        "Provenance signed by their Ed25519 key, encrypted to the patient's key and handed over as a return QR.")
    recipient = writeback.Recipient.from_opened(opened)
    back = doctor.session.write_back(recipient, [writeback.Note(NOTE),
                                                 writeback.Measurement("blood-pressure", BLOOD_PRESSURE)])
    doctor.serve()
    qr.write_png(back.link, root / "writeback.png")
    say(f"   {len(back.resources)} records signed for the patient named in their {recipient.how} "
        f"({_short(recipient.did, 14)}); served as CID {_short(back.cid)} by the clinician's gateway; QR image "
        "writeback.png.")

    say("8. The patient scans the return QR and imports it; medvault checks the signature and asks the practitioner "
        "registry who holds the key.")
    returned = patient.session.import_sources([qr.decode_file(root / "writeback.png")], allow_local_http=True)
    if not returned or not all(o.ok for o in returned):
        say("   Unexpected: the note was not imported: " + "; ".join(o.sentence for o in returned))
        return 1
    say(f"   {returned[0].sentence}")
    with patient.session.read() as conn:
        rows = conn.execute("SELECT json, trust FROM rec_resources WHERE source_id = ? AND rtype IN "
                            "('DocumentReference', 'Observation') ORDER BY rid", (returned[0].report.source_id,))
        for raw, trust in rows.fetchall():
            title, kind = describe.headline(json.loads(raw))
            say(f"   In the records: {kind} \u201c{title}\u201d \u2014 {describe.TRUST_SHORT.get(trust, trust)}.")
    entry = next((e for e in patient.session.audit_entries(20) if e.event == "writeback_received"), None)
    say(f"   In Activity: the note's import (audit entry {entry.seq if entry else '?'}: trust "
        f"{entry.details.get('trust') if entry else '?'}, checked by {entry.details.get('checked') if entry else '?'}).")

    say("9. The patient revokes the share.")
    revoked = patient.session.revoke_share(share.id)
    say(f"   {revoked.sentence} Revocation on the chain: {revoked.chain}.")

    try:
        doctor.session.open_link(scanned, allow_local_http=True, check_chain=True)
        say("10. Unexpected: the revoked share still opened.")
        return 1
    except SyncError as exc:  # the receiver's typed refusal, shown as the clinician would see it
        say(f"10. The clinician opens the share again and is refused: {exc.user_message}")

    say("11. Everything that happened is in each vault's audit log, hash-chained and verified: "
        f"patient: {patient.session.verify().sentence()} clinician: {doctor.session.verify().sentence()}")
    return 0
