"""``medvault demo``: the whole story on the embedded defaults, headless, in a temporary folder.

A patient vault imports a record file, shares its conditions with one clinician by a QR code, the consent is
recorded on an in-process chain, the clinician scans and opens it through the embedded gateway, the patient sees
who opened it, then revokes, and the clinician's receiver refuses. No daemon and no network are needed; nothing
outside the temporary folder is touched, and the demo data is fictional.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

DEMO_BUNDLE = Path(__file__).resolve().parents[2] / "resources" / "demo" / "patient.json"


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


def _story(root: Path, ctx: Any, kdf_profile: str) -> int:
    from sync import consent_sign as cs
    from sync import qr, receiver, shares
    from sync.chain import Chain, Sender
    from sync.gateway import Gateway
    from sync.links import build_card, card_from_link
    from sync.outbox import Outbox
    from vault.outbox_store import SqlOutboxStore
    from vault.records.importer import ImportService
    from vault.store import Vault

    say = ctx.out
    say("1. The patient creates an encrypted vault (Argon2id, SQLCipher) and imports a record file.")
    patient, _ = Vault.create(root / "patient", "demo patient passphrase", kdf_profile=kdf_profile)
    clinician, _ = Vault.create(root / "clinician", "demo clinician passphrase", kdf_profile=kdf_profile)
    with patient, clinician:
        report = ImportService(patient).import_file(DEMO_BUNDLE)
        say(f"   {report.sentence()}")

        say("2. A consortium chain (here in-process) holds the consent registry; the clinic is a member and the "
            "clinician a registered practitioner.")
        chain = Chain.in_process()
        operator = Sender(node_account=chain.node_accounts()[0])
        registry = chain.deploy(operator)
        card = card_from_link(build_card(clinician.identity_keys.ed25519_seed, name="Dr Demo",
                                         address=clinician.identity.eth_address,
                                         iat=int(clinician.now().timestamp())))
        registry.register_practitioner(operator, card.address, card.did)

        say("3. The patient shares their conditions with Dr Demo only, for 7 days, as a QR code.")
        gateway = Gateway(shares.gateway_lookup(patient)).start()
        try:
            created = shares.create_share(patient, shares.Selection(types=("Condition",)), expires=timedelta(days=7),
                                          label="Conditions for Dr Demo", recipient_card=card,
                                          gateway_base=gateway.base_url, chain_domain=registry.domain)
            qr_path = root / "share.png"
            qr.write_png(created.link, qr_path)
            with patient.read():
                sent = Outbox(SqlOutboxStore(patient.conn)).sync(registry, operator)
            say(f"   {len(created.resource_ids)} record(s) encrypted and addressed as {created.cid[:20]}…; QR image "
                f"{qr_path.name}; consent recorded on chain: {bool(sent.anchored)}.")

            say("4. The clinician scans the QR: the link is verified, the consent checked on chain, the file "
                "fetched, its CID recomputed, decrypted.")
            scanned = qr.decode_file(qr_path)
            me = clinician.identity.eth_address
            result = receiver.open_link(scanned, recipient="Dr Demo", x25519_private=clinician.identity_keys
                                        .x25519_private, my_did=clinician.identity.did, allow_local_http=True,
                                        consent_checker=lambda cid, p: registry.is_active(cid, me, patient=p))
            for check in result.checks:
                say(f"   {check.name:<13} {check.status:<14} {check.detail}")
            received = sum(1 for b in result.bundles for e in b["entry"]
                           if e["resource"]["resourceType"] != "Consent")
            say(f"   The clinician sees {received} record(s).")

            receipt = cs.AccessReceipt(bytes.fromhex(result.consent_id), result.patient, me,
                                       int(clinician.now().timestamp()), 1)
            registry.log_access(operator, receipt, cs.sign(clinician.identity_keys.secp256k1_private,
                                                           registry.domain, receipt))
            opened = registry.events("AccessLogged")
            say(f"5. The patient sees who opened it: {len(opened)} signed access receipt(s) on chain, "
                f"from {opened[0]['args']['accessor'] if opened else 'nobody'}.")

            say("6. The patient revokes the share.")
            say("   " + shares.revoke_share(patient, created.id, chain_domain=registry.domain))
            with patient.read():
                Outbox(SqlOutboxStore(patient.conn)).sync(registry, operator)
            try:
                receiver.open_link(scanned, recipient="Dr Demo", x25519_private=clinician.identity_keys.x25519_private,
                                   my_did=clinician.identity.did, allow_local_http=True,
                                   consent_checker=lambda cid, p: registry.is_active(cid, me, patient=p))
                say("   Unexpected: the revoked share still opened.")
                return 1
            except Exception as exc:  # the receiver's typed refusal, shown as the clinician would see it
                say(f"   The clinician's receiver now says: {getattr(exc, 'user_message', exc)}")
        finally:
            gateway.stop()
        say("7. Everything that happened is in the patient's audit log, hash-chained and verified: "
            f"{patient.verify().sentence()}")
    return 0
