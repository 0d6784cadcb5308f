"""FHIR DSTU2 (1.0.x) to STU3 form, after HL7's published DSTU2-to-STU3 resource maps. The result is then taken to R4
by ``convert_stu3``, as HL7's own conversions chain one version at a time; nothing here is stored as STU3.

docs/import-formats.md ("Older FHIR versions") says what each map does and what is left out.
"""

from __future__ import annotations

from vault.records.version_map import Conversion, Map, as_list, move

# DSTU2 Encounter.class was a code; STU3 and R4 use a Coding from HL7 v3 ActCode
ENCOUNTER_CLASS = {"inpatient": ("IMP", "inpatient encounter"), "outpatient": ("AMB", "ambulatory"),
                   "ambulatory": ("AMB", "ambulatory"), "emergency": ("EMER", "emergency"),
                   "home": ("HH", "home health"), "field": ("FLD", "field"), "daytime": ("SS", "short stay"),
                   "virtual": ("VR", "virtual")}
V3_ACT_CODE = "http://hl7.org/fhir/v3/ActCode"
DIAGNOSIS_ROLE = "http://hl7.org/fhir/diagnosis-role"
IMMUNIZATION_ROLE = "http://hl7.org/fhir/v2/0443"

# DSTU2 AllergyIntolerance.status mixed two things STU3 keeps apart: whether the allergy is current, and how sure
# anyone is of it. Each code goes to the one it is about.
_ALLERGY_STATUS = {"active": ("clinicalStatus", "active"), "inactive": ("clinicalStatus", "inactive"),
                   "resolved": ("clinicalStatus", "resolved"), "unconfirmed": ("verificationStatus", "unconfirmed"),
                   "confirmed": ("verificationStatus", "confirmed"), "refuted": ("verificationStatus", "refuted"),
                   "entered-in-error": ("verificationStatus", "entered-in-error")}
_CRITICALITY = {"CRITL": "low", "CRITH": "high", "CRITU": "unable-to-assess"}
_ALLERGY_CATEGORY = frozenset({"food", "medication", "environment"})


def _reason(r: dict) -> None:
    """DSTU2's single reason[x] became STU3's reasonCode and reasonReference lists."""
    if "reasonCodeableConcept" in r:
        r["reasonCode"] = as_list(r.pop("reasonCodeableConcept"))
    if isinstance(r.get("reasonReference"), dict):
        r["reasonReference"] = [r["reasonReference"]]


def _text_note(r: dict, old: str) -> None:
    """A DSTU2 note that was a plain string became a list of Annotations."""
    if isinstance(r.get(old), str):
        note = {"text": r.pop(old)}
        if "_" + old in r:
            note["_text"] = r.pop("_" + old)
        r["note"] = as_list(r.get("note")) + [note]


def _human_names(names: object) -> None:
    """DSTU2 allowed several family names; STU3 and R4 have one, so they are joined in their order."""
    for name in as_list(names):
        if isinstance(name, dict) and isinstance(name.get("family"), list):
            parts = [p for p in name["family"] if isinstance(p, str)]
            name.pop("_family", None)
            if parts:
                name["family"] = " ".join(parts)
            else:
                del name["family"]


def _timing(timing: object) -> None:
    repeat = timing.get("repeat") if isinstance(timing, dict) else None
    if not isinstance(repeat, dict):
        return
    for old, new in (("boundsQuantity", "boundsDuration"), ("durationUnits", "durationUnit"),
                     ("periodUnits", "periodUnit")):
        move(repeat, old, new)
    if isinstance(repeat.get("when"), str):
        repeat["when"] = [repeat["when"]]


def _patient(r: dict, conv: Conversion) -> None:
    _human_names(r.get("name"))
    for contact in as_list(r.get("contact")):
        if isinstance(contact, dict):
            _human_names(contact.get("name"))
    for link in as_list(r.get("link")):
        if isinstance(link, dict) and link.get("type") == "replace":
            link["type"] = "replaced-by"


def _allergy(r: dict, conv: Conversion) -> None:
    status = r.pop("status", None)
    r.pop("_status", None)
    if isinstance(status, str) and status in _ALLERGY_STATUS:
        element, code = _ALLERGY_STATUS[status]
        r[element] = code
    elif status is not None:
        raise conv.fail(f"an AllergyIntolerance has the status '{str(status)[:30]}', which FHIR DSTU2 does not "
                        "define, so it cannot be carried over.")
    if isinstance(r.get("criticality"), str) and r["criticality"] in _CRITICALITY:
        r["criticality"] = _CRITICALITY[r["criticality"]]
    category = r.get("category")
    if isinstance(category, str):
        if category in _ALLERGY_CATEGORY:
            r["category"] = [category]
        else:
            del r["category"]               # DSTU2's "other" has no STU3/R4 code
            conv.lost("AllergyIntolerance", "category")
    if "onset" in r:
        move(r, "onset", "onsetDateTime")
    if isinstance(r.get("note"), dict):
        r["note"] = [r["note"]]
    for reaction in as_list(r.get("reaction")):
        if isinstance(reaction, dict) and isinstance(reaction.get("note"), dict):
            reaction["note"] = [reaction["note"]]


def _condition(r: dict, conv: Conversion) -> None:
    _text_note(r, "notes")
    evidence = r.get("evidence")
    for e in as_list(evidence):
        if isinstance(e, dict) and isinstance(e.get("code"), dict):
            e["code"] = [e["code"]]


def _observation(r: dict, conv: Conversion) -> None:
    for rr in as_list(r.get("referenceRange")):
        if isinstance(rr, dict):
            move(rr, "meaning", "type")


def _dosage(d: object, conv: Conversion) -> object:
    if not isinstance(d, dict):
        return d
    if "additionalInstructions" in d:
        d["additionalInstruction"] = as_list(d.pop("additionalInstructions"))
    _timing(d.get("timing"))
    move(d, "siteCodeableConcept", "site")
    if "siteReference" in d:
        d.pop("siteReference")
        conv.lost("MedicationOrder", "dosageInstruction.siteReference")
    return d


def _medication_order(r: dict, conv: Conversion) -> None:
    r["intent"] = "order"
    if "prescriber" in r:
        r["requester"] = {"agent": r.pop("prescriber")}
    _reason(r)
    _text_note(r, "note")
    if "dosageInstruction" in r:
        r["dosageInstruction"] = [_dosage(d, conv) for d in as_list(r["dosageInstruction"])]
    dispense = r.get("dispenseRequest")
    if isinstance(dispense, dict):
        for gone in ("medicationCodeableConcept", "medicationReference"):
            if gone in dispense:
                dispense.pop(gone)
                conv.lost("MedicationOrder", "dispenseRequest.medication")
    substitution = r.get("substitution")
    if isinstance(substitution, dict) and "type" in substitution:
        # the kind of substitution allowed: R4 says it as substitution.allowedCodeableConcept
        substitution["allowedCodeableConcept"] = substitution.pop("type")


_IMMUNIZATION_STATUS = frozenset({"completed", "entered-in-error"})


def _immunization(r: dict, conv: Conversion) -> None:
    status = r.get("status")
    if not isinstance(status, str) or status not in _IMMUNIZATION_STATUS:
        shown = status[:30] if isinstance(status, str) else "(not a code)"
        raise conv.fail(f"an Immunization has the status '{shown}', which FHIR R4 has no equivalent "
                        "for (R4 records only completed vaccinations, or ones not done), so it cannot be converted.")
    if "reported" in r:
        reported = r.pop("reported")
        r.pop("_reported", None)
        if isinstance(reported, bool):
            r["primarySource"] = not reported
    practitioners = []
    for element, code in (("performer", "AP"), ("requester", "OP")):
        if isinstance(r.get(element), dict):
            practitioners.append({"role": {"coding": [{"system": IMMUNIZATION_ROLE, "code": code}]},
                                  "actor": r.pop(element)})
    if practitioners:
        r["practitioner"] = practitioners


def _procedure(r: dict, conv: Conversion) -> None:
    not_done = as_list(r.pop("reasonNotPerformed", None))
    if not_done:
        r["notDoneReason"] = not_done[0]
        if len(not_done) > 1:
            conv.lost("Procedure", "reasonNotPerformed")
    _reason(r)
    if "request" in r:
        r["basedOn"] = [r.pop("request")]
    _text_note(r, "notes")
    if isinstance(r.get("notes"), list):
        r["note"] = r.pop("notes")


def _encounter(r: dict, conv: Conversion) -> None:
    cls = r.get("class")
    if isinstance(cls, str):
        code = ENCOUNTER_CLASS.get(cls)
        r["class"] = {"system": V3_ACT_CODE, "code": code[0], "display": code[1]} if code else {"display": cls}
    diagnoses = [{"condition": ref} for ref in as_list(r.pop("indication", None))]
    hospitalization = r.get("hospitalization")
    if isinstance(hospitalization, dict):
        for element, role in (("admittingDiagnosis", "AD"), ("dischargeDiagnosis", "DD")):
            for ref in as_list(hospitalization.pop(element, None)):
                diagnoses.append({"condition": ref, "role": {"coding": [{"system": DIAGNOSIS_ROLE, "code": role}]}})
    if diagnoses:
        r["diagnosis"] = diagnoses


def _diagnostic_report(r: dict, conv: Conversion) -> None:
    if isinstance(r.get("performer"), dict):
        r["performer"] = [{"actor": r["performer"]}]
    if "request" in r:
        r["basedOn"] = as_list(r.pop("request"))


def _care_plan(r: dict, conv: Conversion) -> None:
    if r.get("status") == "proposed":
        r["status"], r["intent"] = "draft", "proposal"
    else:
        r["intent"] = "plan"
    if isinstance(r.get("note"), dict):
        r["note"] = [r["note"]]
    for activity in as_list(r.get("activity")):
        if not isinstance(activity, dict):
            continue
        move(activity, "actionResulting", "outcomeReference")
        detail = activity.get("detail")
        if isinstance(detail, dict):
            _timing(detail.get("scheduledTiming"))
        if isinstance(detail, dict) and isinstance(detail.get("statusReason"), dict):
            reason = detail["statusReason"]
            text = reason.get("text") or next((c.get("display") or c.get("code") for c in as_list(reason.get("coding"))
                                               if isinstance(c, dict)), None)
            detail["statusReason"] = text if isinstance(text, str) else None
            if detail["statusReason"] is None:
                del detail["statusReason"]
                conv.lost("CarePlan", "activity.detail.statusReason")


def _practitioner(r: dict, conv: Conversion) -> None:
    if isinstance(r.get("name"), dict):
        r["name"] = [r["name"]]
    _human_names(r.get("name"))


def _medication(r: dict, conv: Conversion) -> None:
    product = r.pop("product", None)
    if isinstance(product, dict):
        if "form" in product:
            r["form"] = product["form"]
        ingredients = []
        for i in as_list(product.get("ingredient")):
            if isinstance(i, dict):
                i = dict(i)
                move(i, "item", "itemReference")
                ingredients.append(i)
        if ingredients:
            r["ingredient"] = ingredients
        if "batch" in product:
            conv.lost("Medication", "product.batch")


MAPS: dict[str, Map] = {
    "Patient": Map(custom=_patient, rename={"careProvider": "generalPractitioner"}),
    "AllergyIntolerance": Map(custom=_allergy, rename={"substance": "code", "recordedDate": "assertedDate",
                                                       "reporter": "asserter", "lastOccurence": "lastOccurrence"}),
    "Condition": Map(custom=_condition, rename={"patient": "subject", "encounter": "context",
                                                "dateRecorded": "assertedDate", "onsetQuantity": "onsetAge",
                                                "abatementQuantity": "abatementAge"},
                     to_list=("category", "evidence")),
    "Observation": Map(custom=_observation, rename={"encounter": "context", "comments": "comment"},
                       to_list=("category",)),
    "MedicationOrder": Map(custom=_medication_order, rename={"patient": "subject", "encounter": "context",
                                                             "dateWritten": "authoredOn"},
                           drop=("dateEnded", "reasonEnded"), target="MedicationRequest"),
    "Immunization": Map(custom=_immunization, rename={"wasNotGiven": "notGiven"}),
    "Procedure": Map(custom=_procedure, rename={"notPerformed": "notDone", "encounter": "context",
                                                "used": "usedReference"}),
    "Encounter": Map(custom=_encounter, rename={"patient": "subject"}, drop=("fulfills",)),
    "DiagnosticReport": Map(custom=_diagnostic_report, rename={"encounter": "context"}),
    "CarePlan": Map(custom=_care_plan, rename={"support": "supportingInfo"},
                    drop=("modified", "participant", "relatedPlan")),
    "Organization": Map(to_list=("type",)),
    "Practitioner": Map(custom=_practitioner, drop=("practitionerRole",)),
    "Medication": Map(custom=_medication, drop=("isBrand",)),
}
