"""Administer a medvault ConsentRegistry on a consortium network (run by a hospital's IT team).

    python registry_admin.py --rpc URL --chain-id ID --key-file member.key deploy
    python registry_admin.py --rpc URL --chain-id ID --key-file admin.key  --registry ADDR add-member 0xABC...
    python registry_admin.py --rpc URL --chain-id ID --key-file admin.key  --registry ADDR remove-member 0xABC...
    python registry_admin.py --rpc URL --chain-id ID --key-file member.key --registry ADDR \
        register-practitioner 0xDEF... did:key:z6Mk...
    python registry_admin.py --rpc URL --chain-id ID --key-file member.key --registry ADDR deactivate-practitioner 0xDEF...
    python registry_admin.py --rpc URL --chain-id ID --registry ADDR status [ADDRESS]

The key file holds the operator's secp256k1 private key as hex on one line and must be readable by its owner only.
Exit status: 0 done, 1 refused or unreachable (one line on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import stat
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sync.chain import Chain, Sender  # noqa: E402
from sync.errors import SyncError  # noqa: E402


class UsageError(Exception):
    pass


def read_key(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"{path} is readable by other users; run: chmod 600 {path}")
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text[2:] if text.startswith("0x") else text)
    except ValueError as exc:
        raise UsageError(f"{path} does not hold a hex private key") from exc
    if len(key) != 32:
        raise UsageError(f"{path} does not hold a 32-byte private key")
    return key


def run(argv: list[str]) -> dict:
    p = argparse.ArgumentParser(prog="registry_admin", description=__doc__.split("\n\n")[0])
    p.add_argument("--rpc", required=True)
    p.add_argument("--chain-id", type=int, required=True)
    p.add_argument("--key-file", type=Path)
    p.add_argument("--registry")
    p.add_argument("--timeout", type=float, default=15.0)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("deploy")
    for name in ("add-member", "remove-member", "deactivate-practitioner"):
        sub.add_parser(name).add_argument("address")
    reg = sub.add_parser("register-practitioner")
    reg.add_argument("address")
    reg.add_argument("did")
    sub.add_parser("status").add_argument("address", nargs="?")
    args = p.parse_args(argv)

    chain = Chain.connect(args.rpc, expected_chain_id=args.chain_id, timeout=args.timeout)
    if args.cmd == "status":
        if not args.registry:
            raise UsageError("status needs --registry")
        registry = chain.registry(args.registry)
        out = {"chain_id": chain.chain_id, "registry": registry.address, "admin": registry.admin()}
        if args.address:
            did_hash, active = registry.practitioner(args.address)
            out.update(address=args.address, member=registry.is_member(args.address),
                       practitioner_active=active, practitioner_did_hash="0x" + did_hash.hex())
        return out

    if args.key_file is None:
        raise UsageError(f"{args.cmd} needs --key-file")
    sender = Sender(private_key=read_key(args.key_file))
    if args.cmd == "deploy":
        registry = chain.deploy(sender)
        return {"chain_id": chain.chain_id, "registry": registry.address, "admin": sender.address,
                "deploy_block": registry.from_block}
    if not args.registry:
        raise UsageError(f"{args.cmd} needs --registry")
    registry = chain.registry(args.registry)
    if args.cmd == "add-member":
        result = registry.add_member(sender, args.address)
    elif args.cmd == "remove-member":
        result = registry.remove_member(sender, args.address)
    elif args.cmd == "register-practitioner":
        result = registry.register_practitioner(sender, args.address, args.did)
    else:
        result = registry.deactivate_practitioner(sender, args.address)
    return {"tx_hash": "0x" + result.tx_hash.hex(), "block": result.block_number}


def main(argv: list[str] | None = None) -> int:
    try:
        print(json.dumps(run(sys.argv[1:] if argv is None else argv), indent=2))
        return 0
    except UsageError as exc:
        print(f"registry_admin: {exc}", file=sys.stderr)
        return 2
    except SyncError as exc:
        print(f"registry_admin: {exc.user_message}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"registry_admin: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
