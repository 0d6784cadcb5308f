"""The small engine the FHIR version maps (``convert_stu3``, ``convert_dstu2``) are written for.

A map is data: elements renamed, codes translated, codes that became CodeableConcepts, single values that became
lists, elements with no equivalent in the next version. What a table cannot say (a backbone element that changed
shape, a flag that became a status) is a function of the same map, which reads the resource in its old form.
Everything that is dropped is recorded with ``Conversion.lost``, so the import can say what did not survive.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from vault.records.errors import VersionNotConvertible


@dataclass
class Conversion:
    """What converting one file found: elements lost (``Type.element`` -> records), and where it is (for errors)."""
    version: str
    where: str = ""
    lost_elements: Counter = field(default_factory=Counter)

    def lost(self, rtype: str, element: str) -> None:
        self.lost_elements[f"{rtype}.{element}"] += 1

    def fail(self, reason: str) -> VersionNotConvertible:
        return VersionNotConvertible(f"{self.where.capitalize()}: {reason} Nothing was imported.")


Custom = Callable[[dict, Conversion], None]


@dataclass(frozen=True)
class Map:
    """One resource type's step to the next FHIR version. Applied in this order: ``custom`` (on the old form),
    ``drop``, ``rename``, ``codes``, ``concepts``, ``to_list``, then the type becomes ``target`` if given."""
    rename: dict[str, str] = field(default_factory=dict)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)           # element -> {old code: new code}
    concepts: dict[str, tuple[str, frozenset[str], dict[str, str]]] = field(default_factory=dict)
    # element -> (code system, the codes it defines, {old code: new code}); a code outside it keeps its words only
    to_list: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    custom: Custom | None = None
    target: str | None = None


def apply(m: Map, resource: dict, conv: Conversion) -> dict:
    rtype = resource["resourceType"]
    if m.custom is not None:
        m.custom(resource, conv)
    for name in m.drop:
        if name in resource or "_" + name in resource:
            resource.pop(name, None)
            resource.pop("_" + name, None)
            conv.lost(rtype, name)
    for old, new in m.rename.items():
        move(resource, old, new)
    for name, table in m.codes.items():
        value = resource.get(name)
        if isinstance(value, str) and value in table:
            resource[name] = table[value]
    for name, (system, defined, table) in m.concepts.items():
        value = resource.get(name)
        if isinstance(value, str):
            resource.pop("_" + name, None)
            resource[name] = concept(system, defined, table.get(value, value))
    for name in m.to_list:
        value = resource.get(name)
        if value is not None and not isinstance(value, list):
            resource[name] = [value]
    if m.target:
        resource["resourceType"] = m.target
    return resource


def move(holder: dict, old: str, new: str) -> None:
    """Rename an element and its primitive extension (``_old``), if present."""
    if old in holder:
        holder[new] = holder.pop(old)
    if "_" + old in holder:
        holder["_" + new] = holder.pop("_" + old)


def concept(system: str, defined: frozenset[str], code: str) -> dict:
    """A code that became a CodeableConcept: coded in the new system when it defines the code, else kept as words
    (a provider's own code is not forced into a system that does not have it)."""
    if code in defined:
        return {"coding": [{"system": system, "code": code}]}
    return {"text": code}


def as_list(value: object) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
