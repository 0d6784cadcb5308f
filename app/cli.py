"""The ``medvault`` command line: a stable contract over the same services the desktop app uses.

Exit status: 0 success, 1 a user error (a ``MedvaultError``: its one plain sentence on stderr), 2 bad usage,
70 a bug (EX_SOFTWARE of sysexits: one sentence naming the crash report, no traceback unless MEDVAULT_DEBUG is
set), 130 cancelled with Ctrl-C, 141 (128 + SIGPIPE) when the reader of the output went away
(``medvault list | head``), quietly, as Unix tools do. Command groups live in
``app/commands/``; each module has ``register(subparsers)`` and sets ``func(args, ctx) -> int`` on its parsers.
Nothing here imports Qt, so the CLI starts fast and runs on machines without a display.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from app import logfile, terminal
from app.version import __version__
from vault import eventlog
from vault.errors import MedvaultError, VaultError

COMMAND_MODULES = ("vault_cmds", "records", "sharing", "chain", "clinician", "demo", "gui")
EXIT_OK, EXIT_USER, EXIT_USAGE = 0, 1, 2
EXIT_BUG = 70               # EX_SOFTWARE (sysexits.h): scripts can tell medvault's fault from the user's input
EXIT_CANCELLED = 128 + 2    # 2 is SIGINT
EXIT_CLOSED_PIPE = 128 + 13  # 13 is SIGPIPE on every POSIX system


class UsageError(Exception):
    """Bad usage: exit status 2."""


def default_vault_dir() -> Path:
    import platformdirs
    return Path(platformdirs.user_data_dir("medvault", appauthor=False)) / "vault"


class Context:
    """What a command needs from outside: where the vault is, secrets, output. Injectable for tests."""

    def __init__(self, args: argparse.Namespace, *, stdin: TextIO | None = None, stdout: TextIO | None = None,
                 stderr: TextIO | None = None, environ: dict[str, str] | None = None,
                 prompt: Callable[[str], str] | None = None) -> None:
        self.args = args
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.environ = os.environ if environ is None else environ
        self._prompt = prompt
        self.anchor_note = ""

    # --- where ----------------------------------------------------------------------------------------------
    @property
    def vault_dir(self) -> Path:
        given = getattr(self.args, "vault", None) or self.environ.get("MEDVAULT_VAULT")
        return Path(given).expanduser() if given else default_vault_dir()

    # --- secrets --------------------------------------------------------------------------------------------
    def _interactive(self) -> bool:
        return self._prompt is not None or (self.stdin.isatty() and sys.stdin is self.stdin)

    def _ask(self, label: str) -> str:
        if self._prompt is not None:
            return self._prompt(label)
        import getpass
        return getpass.getpass(label)

    def passphrase(self) -> str:
        path = getattr(self.args, "passphrase_file", None)
        if path:
            try:
                return Path(path).read_text(encoding="utf-8").splitlines()[0]
            except (OSError, IndexError, UnicodeDecodeError):
                raise UsageError("could not read a passphrase from --passphrase-file") from None
        if "MEDVAULT_PASSPHRASE" in self.environ:
            return self.environ["MEDVAULT_PASSPHRASE"]
        if self._interactive():
            return self._ask("Vault passphrase: ")
        raise UsageError("no passphrase: set MEDVAULT_PASSPHRASE, pass --passphrase-file, or run in a terminal")

    def new_passphrase(self, variable: str = "MEDVAULT_NEW_PASSPHRASE") -> str:
        if variable in self.environ:
            return self.environ[variable]
        if self._interactive():
            first = self._ask("New passphrase: ")
            if self._ask("Repeat the new passphrase: ") != first:
                raise VaultError("The two passphrases differ; nothing was changed.")
            return first
        raise UsageError(f"no new passphrase: set {variable} or run in a terminal")

    def recovery_key(self) -> str:
        if "MEDVAULT_RECOVERY_KEY" in self.environ:
            return self.environ["MEDVAULT_RECOVERY_KEY"]
        if self._interactive():
            return self._ask("Recovery key: ")
        raise UsageError("no recovery key: set MEDVAULT_RECOVERY_KEY or run in a terminal")

    def optional_recovery_key(self, why: str, label: str) -> str | None:
        """The recovery key when one is at hand (the variable, or typed at ``label`` after ``why`` is said);
        None when not."""
        if "MEDVAULT_RECOVERY_KEY" in self.environ:
            return self.environ["MEDVAULT_RECOVERY_KEY"] or None
        if self._interactive():
            self.warn(why)
            return self._ask(label).strip() or None
        return None

    @property
    def accept_older(self) -> bool:
        return bool(getattr(self.args, "accept_older_backup", False))

    def open_vault(self) -> Any:
        """Unlock; with a consent network configured, also check that no newer copy of this vault anchored a state
        there (refused unless --accept-older-backup; ``anchor_note`` says when the network could not be asked)."""
        from app.services.unlocking import open_vault
        opened = open_vault(self.vault_dir, self.passphrase(), accept_older=self.accept_older)
        self.anchor_note = opened.note
        return opened.vault

    def open_session(self) -> Any:
        """The vault unlocked as an ``app.services.Session`` (its person from ``--person``, if the command has it)."""
        from app.services import Session
        session = Session(self.open_vault())
        try:
            session.set_person(getattr(self.args, "person", None))
        except BaseException:
            session.close()
            raise
        return session

    # --- output ---------------------------------------------------------------------------------------------
    # Everything printed passes app.terminal: no control character from outside data reaches the terminal.
    # Commands also pass each outside value through terminal.value, so none can start a line of its own.
    def out(self, text: str = "") -> None:
        print(terminal.message(text), file=self.stdout)

    def warn(self, text: str) -> None:
        print(terminal.message(text), file=self.stderr)

    def json(self, value: Any) -> None:
        self.stdout.write(terminal.json_text(value))
        self.stdout.write("\n")


def needs_subcommand(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace, Context], int]:
    """The handler of a command group called without its subcommand: show its usage, exit status 2."""
    def run(args: argparse.Namespace, ctx: Context) -> int:
        parser.print_usage(ctx.stderr)
        return EXIT_USAGE
    return run


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 itself; keep its one-line form
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"medvault: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="medvault", description="Your medical records in an encrypted vault you control.")
    parser.add_argument("--version", action="version", version=f"medvault {__version__}")
    parser.add_argument("--vault", metavar="DIR", help="the vault folder (default: in your user data folder)")
    parser.add_argument("--passphrase-file", metavar="FILE", help="read the passphrase from the first line of FILE")
    parser.add_argument("--accept-older-backup", action="store_true",
                        help="open a vault whose database is older than its last saved state, because you restored "
                             "that older copy on purpose (recorded in the audit log)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"app.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"app.commands.{name}":
                continue  # a command group not present in this build
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None, **context: Any) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        if args.command is None and "gui" in parser._subparsers._group_actions[0].choices:  # type: ignore[union-attr]
            args = parser.parse_args([*(argv or sys.argv[1:]), "gui"])
        else:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
    ctx = Context(args, **context)
    with logfile.writing():
        eventlog.event("start", command=args.command)
        return _run(args, ctx)


def _run(args: argparse.Namespace, ctx: Context) -> int:
    try:
        return int(args.func(args, ctx) or 0)
    except UsageError as exc:
        ctx.warn(f"medvault: {exc}")
        return EXIT_USAGE
    except MedvaultError as exc:
        eventlog.event("error", error=type(exc).__name__, command=args.command)
        ctx.warn(f"medvault: {exc.user_message}")
        return EXIT_USER
    except BrokenPipeError:
        _discard_unwritten(ctx.stdout)
        return EXIT_CLOSED_PIPE
    except KeyboardInterrupt:
        ctx.warn("medvault: cancelled; nothing was changed.")
        return EXIT_CANCELLED
    except Exception as exc:
        if ctx.environ.get("MEDVAULT_DEBUG") or os.environ.get("MEDVAULT_DEBUG"):
            raise
        return _report_bug(exc, ctx)


def _report_bug(exc: Exception, ctx: Context) -> int:
    """Not the user's fault: a report for the developers and one sentence. The message and traceback could hold
    record content ("KeyError: 'Hypertension'"), so neither is printed; the report keeps only types and frames."""
    from app import crash
    eventlog.event("bug", error=type(exc).__name__, command=ctx.args.command)
    report = crash.record(exc)
    where = f"a report without health data is in {report}" if report else "the crash report could not be written"
    ctx.warn(f"medvault: an unexpected error stopped this command: a bug in medvault, not something you did; "
             f"your vault was not changed, and {where} (MEDVAULT_DEBUG=1 shows the details).")
    return EXIT_BUG


def _discard_unwritten(stream: TextIO) -> None:
    """The reader of ``stream`` is gone: point it at /dev/null, so the output still buffered is dropped at exit
    instead of failing again there with a traceback."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (tests use in-memory streams)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
