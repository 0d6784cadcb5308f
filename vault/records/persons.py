"""Whose records are these? A vault belongs to one person; it may also keep other persons' records apart (a parent
keeping a child's), never mixed.

The first ``Patient`` imported becomes the vault's own person (``is_primary``). Every stored resource carries the
id of the person it belongs to in ``rec_resources.person``. Before any Patient arrives there is no person and
resources carry NULL; the first person takes them over, so NULL never coexists with a primary person.

Read functions take ``person: int | None``: None means the vault's own person (and, in a vault with no person yet,
the records that belong to nobody, which are then all of them); an id means that person; ``EVERYONE`` means no
filter (a whole-vault copy). Nothing here imports Qt.

Two Patient records are the same person when nothing contradicts it and something confirms it: birth dates, when
both are given, must agree; an identifier shared (same system and value) confirms; otherwise an identifier system
both use with different values contradicts, and without one the normalised name and the birth date must both
agree. A name written differently ("JOHN  Smith", "John Smith") is the same name.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from vault import jsonsafe
from vault.records.errors import OtherPerson, PersonNotFound

EVERYONE = 0                        # person ids start at 1: 0 selects every person's records
SUBJECT_KEYS = ("subject", "patient", "beneficiary")

_TABLE = """
CREATE TABLE persons (
    id            INTEGER PRIMARY KEY,
    display_name  TEXT,                 -- from the Patient that created the person (inside the encrypted database)
    birth_date    TEXT,
    is_primary    INTEGER NOT NULL DEFAULT 0 CHECK (is_primary IN (0, 1)),
    created_at    TEXT NOT NULL
)"""


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    display_name: str | None
    birth_date: str | None
    is_primary: bool

    def as_json(self) -> dict:
        return {"id": self.id, "display_name": self.display_name, "birth_date": self.birth_date,
                "is_primary": self.is_primary}


# --- reading ------------------------------------------------------------------------------------------------------

def persons(conn: Any) -> list[Person]:
    """Every person of the vault, the vault's own first."""
    return [Person(r[0], r[1], r[2], bool(r[3])) for r in conn.execute(
        "SELECT id, display_name, birth_date, is_primary FROM persons ORDER BY is_primary DESC, id")]


def primary(conn: Any) -> int | None:
    row = conn.execute("SELECT id FROM persons WHERE is_primary = 1").fetchone()
    return row[0] if row else None


def resolve(conn: Any, person: int | None) -> int | None:
    """The person id a read filters on: None -> the vault's own (None if it has none yet); an unknown id is refused."""
    if person is None:
        return primary(conn)
    if person == EVERYONE:
        return EVERYONE
    if conn.execute("SELECT 1 FROM persons WHERE id = ?", (int(person),)).fetchone() is None:
        raise PersonNotFound()
    return int(person)


def where(conn: Any, person: int | None, column: str = "person", *, use_index: bool = True) -> tuple[str, list]:
    """An SQL condition (never empty: ``1`` for everyone) and its arguments selecting ``person``'s rows.

    ``use_index=False`` writes ``+column`` so SQLite keeps the index the rest of the query is built for (a code's,
    say) rather than walking every row of the person."""
    pid = resolve(conn, person)
    col = column if use_index else f"+{column}"
    if pid == EVERYONE:
        return "1", []
    if pid is None:
        return f"{col} IS NULL", []
    return f"{col} = ?", [pid]


# --- who is this Patient? -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Facts:
    """What identifies a Patient, normalised for comparison."""
    identifiers: frozenset[tuple[str, str]]
    names: frozenset[str]
    birth_date: str | None

    @property
    def systems(self) -> frozenset[str]:
        return frozenset(s for s, _ in self.identifiers)


def _norm(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isalpha()).casefold()


def _name_keys(patient: dict) -> frozenset[str]:
    keys = set()
    names = patient.get("name")
    for name in names if isinstance(names, list) else []:
        if not isinstance(name, dict):
            continue
        family = name.get("family") if isinstance(name.get("family"), str) else ""
        given = name.get("given") if isinstance(name.get("given"), list) else []
        first = next((g for g in given if isinstance(g, str) and g.strip()), "")
        if family or first:
            keys.add(_norm(first.split()[0] if first.split() else first) + "|" + _norm(family))
        elif isinstance(name.get("text"), str) and name["text"].split():
            words = name["text"].split()
            keys.add(_norm(words[0]) + "|" + _norm(words[-1]))
    return frozenset(k for k in keys if k != "|")


def facts(patient: dict) -> Facts:
    ids = set()
    raw = patient.get("identifier")
    for ident in raw if isinstance(raw, list) else []:
        if isinstance(ident, dict) and isinstance(ident.get("system"), str) and isinstance(ident.get("value"), str):
            if ident["system"].strip() and ident["value"].strip():
                ids.add((ident["system"].strip(), ident["value"].strip()))
    birth = patient.get("birthDate")
    return Facts(frozenset(ids), _name_keys(patient), birth[:10] if isinstance(birth, str) and birth else None)


def same_person(a: Facts, b: Facts) -> bool:
    if a.birth_date and b.birth_date and a.birth_date != b.birth_date:
        return False
    if a.identifiers & b.identifiers:
        return True
    if a.systems & b.systems:
        return False            # the same kind of number, different values: two people
    return bool(a.names & b.names) and a.birth_date is not None and a.birth_date == b.birth_date


def display_name(patient: dict) -> str | None:
    names = [n for n in patient.get("name") or [] if isinstance(n, dict)] if isinstance(patient.get("name"),
                                                                                         list) else []
    names.sort(key=lambda n: {"official": 0, "usual": 1}.get(n.get("use"), 2))
    for n in names:
        if isinstance(n.get("text"), str) and n["text"].strip():
            return n["text"].strip()
        given = [g for g in n.get("given") or [] if isinstance(g, str)] if isinstance(n.get("given"), list) else []
        family = n.get("family") if isinstance(n.get("family"), str) else ""
        text = " ".join([*given, family]).strip()
        if text:
            return text
    return None


def subject_id(resource: dict) -> str | None:
    """The id of the Patient a resource is about, from its subject/patient/beneficiary reference."""
    for key in SUBJECT_KEYS:
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str) and ref["reference"].startswith("Patient/"):
            return ref["reference"][8:]
    return None


class Assigner:
    """Decides, during one import, which person each resource belongs to.

    Patients are matched against every Patient already in the vault and those met earlier in the same file. A
    Patient matching nobody becomes the vault's own person when there is none yet, a new person when the caller
    said to keep other persons (``keep_other``), and otherwise stops the import with ``OtherPerson``.
    ``dry_run`` decides without writing (new persons get negative ids), so a file about someone else is refused
    before the cost of validating it.
    """

    def __init__(self, conn: Any, *, keep_other: bool, dry_run: bool = False, now: str = "") -> None:
        self.conn, self.keep_other, self.dry_run, self.now = conn, keep_other, dry_run, now
        self.primary = primary(conn)
        self.file_person: int | None = None
        self._by_id: dict[str, int | None] = {}              # Patient id -> person, this file and looked up
        self._by_identifier: dict[tuple[str, str], list[tuple[int, Facts]]] | None = None
        self._by_name: dict[tuple[str, str | None], list[tuple[int, Facts]]] = {}
        self._next_draft = -1

    def _load(self) -> None:
        if self._by_identifier is not None:
            return
        self._by_identifier = {}
        for pid, raw in self.conn.execute("SELECT person, json FROM rec_resources WHERE rtype = 'Patient'"
                                          " AND person IS NOT NULL ORDER BY rid"):
            self._remember(pid, facts(jsonsafe.loads_stored(raw)))

    def _remember(self, pid: int, f: Facts) -> None:
        assert self._by_identifier is not None
        for ident in f.identifiers:
            self._by_identifier.setdefault(ident, []).append((pid, f))
        for name in f.names:
            self._by_name.setdefault((name, f.birth_date), []).append((pid, f))

    def _match(self, f: Facts) -> int | None:
        assert self._by_identifier is not None
        candidates = [c for ident in f.identifiers for c in self._by_identifier.get(ident, [])]
        candidates += [c for name in f.names for c in self._by_name.get((name, f.birth_date), [])]
        matches = sorted({pid for pid, other in candidates if same_person(f, other)}, key=lambda p: (p < 0, abs(p)))
        return matches[0] if matches else None

    def _stored_patient_person(self, patient_id: str) -> tuple[bool, int | None]:
        row = self.conn.execute("SELECT person FROM rec_resources WHERE rtype = 'Patient' AND id = ?",
                                (patient_id,)).fetchone()
        if row is None:
            row = self.conn.execute("SELECT r.person FROM rec_aliases a JOIN rec_resources r ON r.rid = a.rid"
                                    " WHERE a.rtype = 'Patient' AND a.id = ?", (patient_id,)).fetchone()
        return (row is not None, row[0] if row else None)

    def patient(self, resource: dict) -> int | None:
        """The person a Patient resource belongs to (creating it if allowed)."""
        pid_str = resource["id"]
        if pid_str in self._by_id:
            return self._by_id[pid_str]
        self._load()
        known, person = self._stored_patient_person(pid_str)
        if not known or person is None:
            f = facts(resource)
            person = self._match(f)
            if person is None:
                if self.primary is not None and not self.keep_other:
                    raise OtherPerson()
                person = self._create(resource, primary=self.primary is None)
            self._remember(person, f)
        self._by_id[pid_str] = person
        if self.file_person is None:
            self.file_person = person
        return person

    def _create(self, resource: dict, *, primary: bool, adopt_unowned: bool = True) -> int:
        if self.dry_run:
            pid = self._next_draft
            self._next_draft -= 1
        else:
            birth = resource.get("birthDate") if isinstance(resource.get("birthDate"), str) else None
            pid = self.conn.execute(
                "INSERT INTO persons (display_name, birth_date, is_primary, created_at) VALUES (?, ?, ?, ?)",
                (display_name(resource), birth, int(primary), self.now)).lastrowid
            if primary and adopt_unowned:
                # records stored before anyone was known (a document, a practitioner list) are the owner's
                self.conn.execute("UPDATE rec_resources SET person = ? WHERE person IS NULL", (pid,))
        if primary:
            self.primary = pid
        return pid

    def decided(self, patient_id: str) -> bool:
        """Whether the person of the Patient with this id is known already (deciding it may create a person)."""
        return patient_id in self._by_id

    def resource(self, resource: dict) -> int | None:
        """The person any resource belongs to: a Patient's own; else the patient it is about; else the file's
        person; else the vault's."""
        if resource.get("resourceType") == "Patient":
            return self.patient(resource)
        about = subject_id(resource)
        if about is not None:
            if about not in self._by_id:
                known, person = self._stored_patient_person(about)
                if known:
                    self._by_id[about] = person
            if about in self._by_id and self._by_id[about] is not None:
                return self._by_id[about]
        return self.file_person if self.file_person is not None else self.primary

    def check(self, resources: list[dict]) -> None:
        """Decide for every Patient among ``resources`` (dry run: only to raise ``OtherPerson`` early)."""
        for r in resources:
            if isinstance(r, dict) and r.get("resourceType") == "Patient" and isinstance(r.get("id"), str):
                self.patient(r)


# --- the migration ------------------------------------------------------------------------------------------------

def migrate_persons_v1(conn: Any) -> None:
    """Add persons and ``rec_resources.person``; an existing vault's Patients become persons (the first one the
    vault's own, Patients about the same person sharing one), and each resource goes to the patient it is about,
    or to the vault's own person."""
    conn.execute(_TABLE)
    conn.execute("CREATE UNIQUE INDEX persons_one_primary ON persons (is_primary) WHERE is_primary = 1")
    conn.execute("ALTER TABLE rec_resources ADD COLUMN person INTEGER REFERENCES persons(id)")
    conn.execute("CREATE INDEX rec_resources_person_date ON rec_resources (person, date)")
    created = conn.execute("SELECT max(imported_at) FROM rec_resources").fetchone()[0] or ""
    assigner = Assigner(conn, keep_other=True, now=created)
    assigner._by_identifier = {}     # nothing is assigned yet: match only among the Patients seen so far
    patients = conn.execute("SELECT rid, json FROM rec_resources WHERE rtype = 'Patient' ORDER BY rid").fetchall()
    for rid, raw in patients:
        resource = jsonsafe.loads_stored(raw)
        f = facts(resource)
        person = assigner._match(f)
        if person is None:
            person = assigner._create(resource, primary=assigner.primary is None, adopt_unowned=False)
        assigner._remember(person, f)
        conn.execute("UPDATE rec_resources SET person = ? WHERE rid = ?", (person, rid))
    if conn.execute("SELECT count(DISTINCT person) FROM rec_resources WHERE rtype = 'Patient'").fetchone()[0] > 1:
        subject = " ".join(f"WHEN json_extract(r.json, '$.{k}.reference') LIKE 'Patient/%'"
                           f" THEN substr(json_extract(r.json, '$.{k}.reference'), 9)" for k in SUBJECT_KEYS)
        conn.execute(f"UPDATE rec_resources AS r SET person = (SELECT p.person FROM rec_resources p"
                     f" WHERE p.rtype = 'Patient' AND p.id = CASE {subject} END)"
                     " WHERE r.person IS NULL AND r.rtype <> 'Patient'")
    if assigner.primary is not None:
        conn.execute("UPDATE rec_resources SET person = ? WHERE person IS NULL", (assigner.primary,))
