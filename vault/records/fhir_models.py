"""The one module that imports ``fhir.resources``; everything else asks it to validate by resource type name.

R4 data (FHIR 4.0.1) validates against the library's ``R4B`` models; its default package is R5, under which real
R4 Encounters and MedicationRequests fail.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from vault.records.errors import ResourceInvalid, UnknownResourceType

__all__ = ["is_resource_type", "validate_resource", "model_of", "FHIR_VERSION"]

FHIR_VERSION = "4.0.1"


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
    path = ".".join(str(p) for p in first.get("loc", ()) if not str(p).startswith("function-")) or "(root)"
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
    except (ValueError, TypeError, RecursionError):
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
