"""The one module that imports ``fhir.resources``; everything else asks it to validate by resource type name.

R4 data (FHIR 4.0.1) validates against the library's ``R4B`` models; its default package is R5, under which real
R4 Encounters and MedicationRequests fail.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from vault.records.errors import ResourceInvalid, UnknownResourceType, shown_name

__all__ = ["is_resource_type", "validate_resource", "model_of"]


@lru_cache(maxsize=None)
def _resource_class(name: str):
    # Element types (HumanName, ...) are models too; only a DomainResource/Resource may stand as a record.
    try:
        cls = get_fhir_model_class(name)
    except (ValueError, AttributeError, TypeError):
        return None
    if not any(base.__name__ == "Resource" for base in cls.__mro__):
        return None
    return cls


def is_resource_type(name: object) -> bool:
    return isinstance(name, str) and name.isidentifier() and _resource_class(name) is not None


def _article(word: str) -> str:
    return "An" if word[:1] in "AEIOU" else "A"


def _describe(err: ValidationError, rtype: str) -> str:
    # The library's own message echoes the offending value, which may be PHI: keep only the path and error kind.
    first = err.errors(include_url=False, include_input=False, include_context=False)[0]
    path = ".".join(shown_name(p) for p in first.get("loc", ()) if not str(p).startswith("function-")) or "(root)"
    kind = first.get("type", "invalid")
    words = {
        "missing": "is required but missing",
        "extra_forbidden": "is not an element FHIR defines here",
        "model_field_validation.missing": "is required but missing",
    }.get(kind, f"has the wrong form ({kind})")
    return f"{_article(rtype)} {rtype} resource's element '{path}' {words}."


def validate_resource(resource: Any) -> None:
    """Check one resource against its R4B model. Raises a typed error whose sentence holds no PHI."""
    if not isinstance(resource, dict):
        raise ResourceInvalid("An entry in the file is not a FHIR resource (a JSON object was expected).")
    rtype = resource.get("resourceType")
    if not is_resource_type(rtype):
        raise UnknownResourceType(
            "The file holds a resource type that FHIR R4 does not define"
            + (f" ('{rtype[:40]}')" if isinstance(rtype, str) and rtype.isidentifier() else "")
            + "; nothing was imported.")
    try:
        _resource_class(rtype).model_validate(resource)
    except ValidationError as err:
        raise ResourceInvalid(_describe(err, rtype)) from None
    except (ValueError, TypeError, LookupError, AttributeError, RecursionError):
        # LookupError: the library looks contained resources' types up in a table and lets a KeyError out for
        # one it does not know
        raise ResourceInvalid(f"{_article(rtype)} {rtype} resource does not have the shape FHIR R4 requires.") from None


def model_of(resource: dict):
    """A validated model object (used to check whole documents such as a generated IPS Bundle)."""
    validate_resource(resource)
    return _resource_class(resource["resourceType"]).model_validate(resource)


def validate_batch(resources: list[dict]) -> list[tuple[str, str] | None]:
    """Validate many resources (run in a worker process): None, or (error class name, sentence) for each."""
    out: list[tuple[str, str] | None] = []
    for r in resources:
        try:
            validate_resource(r)
            out.append(None)
        except (ResourceInvalid, UnknownResourceType) as err:
            out.append((type(err).__name__, err.user_message))
    return out


# --- what the R4B models accept, as data the fast validator patches the official schema with -----------------------

def _field_shape(field) -> tuple[bool, object]:
    """(is a list, primitive kind name or model class) of one model field, from its annotation."""
    import types
    import typing

    def strip_optional(a):
        if typing.get_origin(a) in (typing.Union, types.UnionType):
            rest = [x for x in typing.get_args(a) if x is not type(None)]
            if len(rest) == 1:
                return rest[0]
        return a

    a = strip_optional(field.annotation)
    is_list = typing.get_origin(a) in (list, typing.List)
    if is_list:
        a = strip_optional(typing.get_args(a)[0])
    if typing.get_origin(a) is typing.Annotated:
        kinds = [getattr(m, "__visit_name__", None) for m in typing.get_args(a)[1:]]
        kinds = [k for k in kinds if isinstance(k, str)]
        return is_list, kinds[0] if kinds else "?" + repr(a)
    if a is bool:
        return is_list, "boolean"
    if hasattr(a, "get_model_klass"):
        return is_list, a.get_model_klass()
    return is_list, "?" + getattr(a, "__name__", repr(a))


def schema_constraints(schema: dict) -> dict:
    """Where the R4B models are stricter than HL7's R4 JSON Schema, per schema definition, found by walking each
    resource's model and schema definition side by side: elements R4B drops or retypes (``forbid``), primitive types
    that changed (``primitive``), required elements (complex ``required``, primitive ``required_primitive``, which
    may be given as a value or as an extension), and choice groups (``choices``, at most one value; ``required_choices``,
    exactly one). ``scripts/fhir-schema-constraints`` writes the result to resources/; a test checks it is current.
    """
    defs = schema["definitions"]
    primitives = {n for n, d in defs.items() if "properties" not in d and n[:1].islower()}
    out: dict[str, dict] = {}
    paired: dict[str, type] = {}
    resource_types = []

    def schema_shape(prop: dict) -> tuple[bool, str | None]:
        is_list = prop.get("type") == "array"
        inner = prop.get("items", {}) if is_list else prop
        ref = inner.get("$ref", "")
        if ref:
            return is_list, ref.rsplit("/", 1)[-1]
        if "enum" in inner:
            return is_list, "code"
        return is_list, None            # an inline primitive (choice types): its kind is taken from the model

    def visit(name: str, cls: type) -> None:
        paired[name] = cls
        d = defs[name]
        entry: dict = {}
        fields = {f.alias or n: (n, f) for n, f in cls.model_fields.items()}
        python_names = {n: f.alias or n for n, f in cls.model_fields.items()}
        forbid, primitive, nested = [], {}, []
        for prop, pschema in d.get("properties", {}).items():
            if prop == "resourceType":
                continue
            if prop not in fields:
                forbid.append(prop)
                continue
            if prop.startswith("_"):
                continue
            _n, field = fields[prop]
            s_list, s_kind = schema_shape(pschema)
            m_list, m_kind = _field_shape(field)
            if s_list != m_list:
                forbid.append(prop)
            elif isinstance(m_kind, str):
                if s_kind not in primitives and s_kind not in (None, "code"):
                    forbid.append(prop)
                elif s_kind != m_kind:
                    primitive[prop] = m_kind
            elif s_kind == "ResourceList" and m_kind.__name__ == "Resource":
                continue
            elif s_kind is None or s_kind in primitives or s_kind not in defs:
                forbid.append(prop)
            elif ("_" not in s_kind and s_kind != m_kind.__name__) or paired.get(s_kind, m_kind) is not m_kind:
                forbid.append(prop)     # R4B gave the element another type than R4
            else:
                nested.append((s_kind, m_kind))
        required = sorted(f.alias or n for n, f in cls.model_fields.items()
                          if f.is_required() and (f.alias or n) != "resourceType")
        # both methods return class-level constants; they are declared on instances only
        required_primitive = sorted(python_names[n] for n, _ext in cls.get_required_fields(cls))
        choices, required_choices = [], []
        for group in cls.get_one_of_many_fields(cls).values():
            aliases = sorted(python_names[n] for n in group)
            extra = cls.model_fields[group[0]].json_schema_extra or {}
            (required_choices if extra.get("one_of_many_required") else choices).append(aliases)
        for key, value in (("forbid", sorted(forbid)), ("primitive", dict(sorted(primitive.items()))),
                           ("required", required), ("required_primitive", required_primitive),
                           ("choices", sorted(choices)), ("required_choices", sorted(required_choices))):
            if value:
                entry[key] = value
        if entry:
            out[name] = entry
        for s_kind, m_kind in nested:
            if s_kind not in paired:
                visit(s_kind, m_kind)

    for rtype in schema["discriminator"]["mapping"]:
        cls = _resource_class(rtype)
        if cls is None:
            continue                    # an R4 resource R4B no longer defines: never on the fast path
        resource_types.append(rtype)
        visit(rtype, cls)
    import fhir.resources
    return {"fhir.resources": fhir.resources.__version__, "resource_types": resource_types,
            "r4b_resource_types": _all_resource_types(), "definitions": dict(sorted(out.items()))}


def _all_resource_types() -> list[str]:
    """Every resource type R4B defines, so a type name can be checked without building its model class (which
    takes a good part of a second the first time)."""
    import importlib
    import pkgutil

    import fhir.resources.R4B as package
    found = set()
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("_") or module.name == "tests":
            continue
        for name, value in vars(importlib.import_module(f"{package.__name__}.{module.name}")).items():
            if isinstance(value, type) and value.__module__.endswith("." + module.name) \
                    and getattr(value, "__resource_type__", None) == name and _resource_class(name) is value:
                found.add(name)
    return sorted(found)
