"""FHIR STU3 (3.0.x) to R4 (4.0.1), for the clinical resources a patient's export carries, after HL7's published
STU3-to-R4 resource maps (the R4 specification's "R3 to R4" conversion maps of each resource).

What changed and how it is carried over is in the tables below; docs/import-formats.md ("Older FHIR versions") says
it in words, including everything that has no R4 equivalent and is left out (the original file keeps it).
"""

from __future__ import annotations

from vault.records.version_map import Conversion, Map, as_list, move

TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"
CONDITION_CLINICAL = (TERMINOLOGY + "condition-clinical",
                      frozenset({"active", "recurrence", "relapse", "inactive", "remission", "resolved"}), {})
# STU3's "unknown" verification status has no R4 code: handled in _condition, before this table is used
CONDITION_VERIFICATION = (TERMINOLOGY + "condition-ver-status",
                          frozenset({"unconfirmed", "provisional", "differential", "confirmed", "refuted",
                                     "entered-in-error"}), {})
ALLERGY_CLINICAL = (TERMINOLOGY + "allergyintolerance-clinical", frozenset({"active", "inactive", "resolved"}), {})
ALLERGY_VERIFICATION = (TERMINOLOGY + "allergyintolerance-verification",
                        frozenset({"unconfirmed", "confirmed", "refuted", "entered-in-error"}), {})

# HL7 moved its own code systems from hl7.org/fhir to terminology.hl7.org in R4; codings naming the old address are
# given the new one so R4 readers (and medvault's own summaries) recognise them
_FHIR_SYSTEMS = frozenset({
    "observation-category", "condition-category", "condition-clinical", "condition-ver-status",
    "allergyintolerance-clinical", "allergyintolerance-verification", "diagnosis-role", "medication-request-category",
    "medicationrequest-category", "care-plan-activity-category", "immunization-origin", "observation-interpretation",
    "referencerange-meaning", "dose-rate-type", "encounter-special-arrangements", "diet", "discharge-disposition",
    "admit-source", "practitioner-role", "organization-type", "goal-achievement", "condition-state"})


def system_r4(system: str) -> str:
    if system.startswith("http://hl7.org/fhir/v2/"):
        return TERMINOLOGY + "v2-" + system[len("http://hl7.org/fhir/v2/"):].replace("/", "-")
    if system.startswith("http://hl7.org/fhir/v3/"):
        return TERMINOLOGY + "v3-" + system[len("http://hl7.org/fhir/v3/"):]
    if system.startswith("http://hl7.org/fhir/") and system[len("http://hl7.org/fhir/"):] in _FHIR_SYSTEMS:
        return TERMINOLOGY + system[len("http://hl7.org/fhir/"):]
    return system


def _dosage(dosage: object) -> object:
    """STU3 Dosage.dose[x] and rate[x] moved into R4's Dosage.doseAndRate."""
    if not isinstance(dosage, dict):
        return dosage
    pair = {k: dosage.pop(k) for k in ("doseRange", "doseQuantity", "rateRatio", "rateRange", "rateQuantity")
            if k in dosage}
    if pair:
        dosage["doseAndRate"] = [pair]
    return dosage


def _performer_function(resource: dict, element: str) -> None:
    """STU3 performer/practitioner backbone elements named the role ``role``; R4 calls it ``function``."""
    for p in as_list(resource.get(element)):
        if isinstance(p, dict):
            move(p, "role", "function")


def _definition(resource: dict, conv: Conversion) -> None:
    # STU3 pointed at the protocol a record follows with a Reference; R4 with canonical URLs. A Reference's target
    # is not a canonical URL, so it cannot be carried over truthfully.
    if "definition" in resource:
        resource.pop("definition")
        resource.pop("_definition", None)
        conv.lost(resource["resourceType"], "definition")


def _condition(r: dict, conv: Conversion) -> None:
    if r.get("verificationStatus") == "unknown":
        del r["verificationStatus"]             # R4 has no "unknown": an absent status says the same
    if r.get("abatementBoolean") is True:
        r["abatementString"] = "abated"         # R4 has no boolean abatement: the fact, in words
    if "abatementBoolean" in r:
        r.pop("abatementBoolean")
        r.pop("_abatementBoolean", None)


def _allergy(r: dict, conv: Conversion) -> None:
    for reaction in as_list(r.get("reaction")):
        if isinstance(reaction, dict) and "certainty" in reaction:
            reaction.pop("certainty")
            reaction.pop("_certainty", None)
            conv.lost("AllergyIntolerance", "reaction.certainty")


_RELATED = {"has-member": "hasMember", "derived-from": "derivedFrom"}


def _observation(r: dict, conv: Conversion) -> None:
    if "comment" in r:
        note = {"text": r.pop("comment")}
        if "_comment" in r:
            note["_text"] = r.pop("_comment")
        r["note"] = [note]
    for related in as_list(r.pop("related", None)):
        target = related.get("target") if isinstance(related, dict) else None
        element = _RELATED.get(related.get("type", "has-member")) if isinstance(related, dict) else None
        if element and isinstance(target, dict):
            r.setdefault(element, []).append(target)
        else:
            conv.lost("Observation", "related")
    for holder in [r] + [c for c in as_list(r.get("component")) if isinstance(c, dict)]:
        if "valueAttachment" in holder:
            holder.pop("valueAttachment")
            conv.lost("Observation", "valueAttachment")


def _medication_request(r: dict, conv: Conversion) -> None:
    requester = r.get("requester")
    if isinstance(requester, dict):
        if "onBehalfOf" in requester:
            conv.lost("MedicationRequest", "requester.onBehalfOf")
        if "agent" in requester:
            r["requester"] = requester["agent"]
        else:
            del r["requester"]
    if "dosageInstruction" in r:
        r["dosageInstruction"] = [_dosage(d) for d in as_list(r["dosageInstruction"])]
    substitution = r.get("substitution")
    if isinstance(substitution, dict):
        move(substitution, "allowed", "allowedBoolean")
        if not {"allowedBoolean", "_allowedBoolean", "allowedCodeableConcept"} & substitution.keys():
            substitution["allowedBoolean"] = True     # R4 requires it; STU3's default meant "allowed"
    _definition(r, conv)


def _immunization(r: dict, conv: Conversion) -> None:
    if r.pop("notGiven", None) is True:
        r["status"] = "not-done"
    r.pop("_notGiven", None)
    explanation = r.pop("explanation", None)
    if isinstance(explanation, dict):
        if explanation.get("reason"):
            r["reasonCode"] = explanation["reason"]
        not_given = as_list(explanation.get("reasonNotGiven"))
        if not_given:
            r["statusReason"] = not_given[0]
            if len(not_given) > 1:
                conv.lost("Immunization", "explanation.reasonNotGiven")
    if "date" in r:
        move(r, "date", "occurrenceDateTime")
    else:
        # R4 requires when; an STU3 record may not say it. An honest "unknown" rather than a made-up date.
        r["occurrenceString"] = "unknown"
    _performer_function(r, "practitioner")
    move(r, "practitioner", "performer")
    if "vaccinationProtocol" in r:
        r.pop("vaccinationProtocol")
        conv.lost("Immunization", "vaccinationProtocol")


_PROCEDURE_STATUS = {"suspended": "on-hold", "aborted": "stopped"}


def _procedure(r: dict, conv: Conversion) -> None:
    if r.pop("notDone", None) is True:
        r["status"] = "not-done"
    r.pop("_notDone", None)
    move(r, "notDoneReason", "statusReason")
    _performer_function(r, "performer")
    _definition(r, conv)


# R4 requires an encounter's class; STU3 (and DSTU2) did not. Absent, it is said to be unknown, not guessed.
UNKNOWN_CLASS = {"system": TERMINOLOGY + "v3-NullFlavor", "code": "UNK", "display": "unknown"}


def _encounter(r: dict, conv: Conversion) -> None:
    if "class" not in r:
        r["class"] = dict(UNKNOWN_CLASS)
    for d in as_list(r.get("diagnosis")):
        if isinstance(d, dict):
            move(d, "role", "use")
    if isinstance(r.get("appointment"), dict):
        r["appointment"] = [r["appointment"]]


def _diagnostic_report(r: dict, conv: Conversion) -> None:
    performers = []
    for p in as_list(r.get("performer")):
        if isinstance(p, dict) and "actor" in p:
            performers.append(p["actor"])
            if "role" in p:
                conv.lost("DiagnosticReport", "performer.role")
    if "performer" in r:
        r["performer"] = performers
        if not performers:
            del r["performer"]
    if "image" in r:
        r["media"] = r.pop("image")


_CAREPLAN_STATUS = {"suspended": "on-hold", "cancelled": "revoked"}


def _care_plan(r: dict, conv: Conversion) -> None:
    authors = as_list(r.get("author"))
    if authors:
        r["author"] = authors[0]
        if authors[1:]:
            r["contributor"] = authors[1:]
    _definition(r, conv)
    for activity in as_list(r.get("activity")):
        detail = activity.get("detail") if isinstance(activity, dict) else None
        if not isinstance(detail, dict):
            continue
        move(detail, "prohibited", "doNotPerform")
        for gone in ("category", "definition"):
            if gone in detail:
                detail.pop(gone)
                conv.lost("CarePlan", f"activity.detail.{gone}")
        if isinstance(detail.get("statusReason"), str):
            detail["statusReason"] = {"text": detail["statusReason"]}


def _medication(r: dict, conv: Conversion) -> None:
    for gone in ("isBrand", "isOverTheCounter", "package"):
        if gone in r:
            r.pop(gone)
            conv.lost("Medication", gone)
    for ingredient in as_list(r.get("ingredient")):
        if isinstance(ingredient, dict) and "amount" in ingredient:
            move(ingredient, "amount", "strength")


def _patient(r: dict, conv: Conversion) -> None:
    if "animal" in r:
        r.pop("animal")
        conv.lost("Patient", "animal")


MAPS: dict[str, Map] = {
    "Patient": Map(custom=_patient),
    "AllergyIntolerance": Map(custom=_allergy, rename={"assertedDate": "recordedDate"},
                              concepts={"clinicalStatus": ALLERGY_CLINICAL, "verificationStatus": ALLERGY_VERIFICATION}),
    "Condition": Map(custom=_condition, rename={"context": "encounter", "assertedDate": "recordedDate"},
                     concepts={"clinicalStatus": CONDITION_CLINICAL, "verificationStatus": CONDITION_VERIFICATION},
                     to_list=("stage",)),
    "Observation": Map(custom=_observation, rename={"context": "encounter"}),
    "MedicationRequest": Map(custom=_medication_request, rename={"context": "encounter"}, to_list=("category",)),
    "Immunization": Map(custom=_immunization),
    "Procedure": Map(custom=_procedure, rename={"context": "encounter"}, codes={"status": _PROCEDURE_STATUS}),
    "Encounter": Map(custom=_encounter, rename={"reason": "reasonCode", "incomingReferral": "basedOn"}),
    "DiagnosticReport": Map(custom=_diagnostic_report, rename={"context": "encounter", "codedDiagnosis": "conclusionCode"},
                            to_list=("category",)),
    "CarePlan": Map(custom=_care_plan, rename={"context": "encounter"}, codes={"status": _CAREPLAN_STATUS}),
    # resources the clinical ones point at, so their references still lead somewhere
    "Organization": Map(),
    "Practitioner": Map(),
    "Medication": Map(custom=_medication),
}
