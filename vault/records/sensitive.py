"""Which records are sensitive enough to leave out of a share unless the patient puts them back.

Five topics, the ones privacy law and HL7's sensitivity labels single out: mental health, sexual and reproductive
health, alcohol and drug use, HIV, and genetic results; plus records their source marked restricted. A record is
flagged by:

1. its codes: ICD-10 (and ICD-9) ranges, and lists of SNOMED CT, LOINC and RxNorm codes (``docs/sharing.md``
   lists every one of them and says what the lists miss);
2. the security labels its source put on it (``meta.security``: HL7 sensitivity and confidentiality codes);
3. the words of its names, for the topics whose words are unambiguous (``HIV``, ``pregnancy``, ``chromosomal``…)
   and for medicines by ingredient (contraceptives, antiretrovirals, treatments of addiction, psychiatric drugs),
   since no code list can hold every product;
4. its links: a record whose reason, diagnosis, result or focus is a flagged record, and the procedures, medicines,
   care plans, claims and documents of a visit whose reason is sensitive.

Flagging errs towards leaving out: a wrongly flagged record costs one click to put back, a missed one cannot be
recalled once shared. No Qt and no database here: the caller hands over the records (and a way to read the ones
they point at), so the same rules serve the share wizard and any other caller.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

MENTAL = "mental-health"
REPRODUCTIVE = "sexual-reproductive"
SUBSTANCE = "substance-use"
HIV = "hiv"
GENETIC = "genetic"
RESTRICTED = "restricted"

TOPICS = (MENTAL, REPRODUCTIVE, SUBSTANCE, HIV, GENETIC, RESTRICTED)
LABELS = {
    MENTAL: "Mental health",
    REPRODUCTIVE: "Sexual and reproductive health",
    SUBSTANCE: "Alcohol and drug use",
    HIV: "HIV",
    GENETIC: "Genetic results",
    RESTRICTED: "Marked restricted by its source",
}

# --- code systems -------------------------------------------------------------------------------------------------

SNOMED, LOINC, RXNORM, ICD10, ICD9 = "SNOMED CT", "LOINC", "RxNorm", "ICD-10", "ICD-9"
_SYSTEMS = {
    "http://snomed.info/sct": SNOMED, "urn:oid:2.16.840.1.113883.6.96": SNOMED,
    "http://loinc.org": LOINC, "urn:oid:2.16.840.1.113883.6.1": LOINC,
    "http://www.nlm.nih.gov/research/umls/rxnorm": RXNORM, "urn:oid:2.16.840.1.113883.6.88": RXNORM,
    "urn:oid:2.16.840.1.113883.6.90": ICD10, "urn:oid:2.16.840.1.113883.6.3": ICD10,
    "urn:oid:2.16.840.1.113883.6.103": ICD9, "urn:oid:2.16.840.1.113883.6.2": ICD9,
}


def system_name(system: Any) -> str | None:
    """The code system a coding's ``system`` names, among those the lists use; national ICD-10 editions count."""
    if not isinstance(system, str):
        return None
    known = _SYSTEMS.get(system.strip().rstrip("/"))
    if known:
        return known
    s = system.lower()
    if "icd-10" in s or "icd10" in s:
        return ICD10
    if "icd-9" in s or "icd9" in s:
        return ICD9
    return None


# ICD-10 chapters and categories, as (first, last) code prefixes, inclusive; compared without the dot.
ICD10_RANGES: dict[str, tuple[tuple[str, str], ...]] = {
    SUBSTANCE: (("F10", "F16"), ("F18", "F19"), ("Z714", "Z715"), ("Z721", "Z722"), ("K70", "K70"),
                ("G312", "G312"), ("G621", "G621"), ("I426", "I426"), ("K292", "K292"), ("K860", "K860"),
                ("R780", "R785"), ("O9931", "O9932"), ("P043", "P044"), ("Q860", "Q860")),
    MENTAL: (("F01", "F09"), ("F20", "F99"), ("R45851", "R45851"), ("X60", "X84"), ("T1491", "T1491"),
             ("Z915", "Z915")),
    HIV: (("B20", "B24"), ("Z21", "Z21"), ("R75", "R75"), ("Z206", "Z206"), ("Z114", "Z114"), ("Z717", "Z717"),
          ("O987", "O987")),
    REPRODUCTIVE: (("O00", "O9A"), ("Z30", "Z39"), ("Z3A", "Z3A"), ("N46", "N46"), ("N96", "N97"),
                   ("A50", "A64"), ("B977", "B977"), ("Z113", "Z113"), ("Z202", "Z202"), ("Z725", "Z725"),
                   ("Z70", "Z70"), ("Z640", "Z640"), ("T742", "T742"), ("T762", "T762"), ("Z044", "Z044")),
    GENETIC: (("Q90", "Q99"), ("Z14", "Z15"), ("Z137", "Z137"), ("Z3143", "Z3144"), ("O285", "O285"),
              ("O351", "O351"), ("Z8481", "Z8481")),
}

ICD9_RANGES: dict[str, tuple[tuple[str, str], ...]] = {
    SUBSTANCE: (("303", "304"), ("3050", "3050"), ("3052", "3059"), ("291", "292")),
    MENTAL: (("290", "290"), ("293", "302"), ("306", "319"), ("V628", "V628")),
    HIV: (("042", "042"), ("V08", "V08"), ("79571", "79571")),
    REPRODUCTIVE: (("630", "679"), ("V22", "V28"), ("090", "099"), ("0541", "0541"), ("V25", "V25")),
    GENETIC: (("758", "758"), ("V263", "V263"), ("V8301", "V8389")),
}

SNOMED_CODES: dict[str, frozenset[str]] = {
    MENTAL: frozenset({
        "35489007",   # Depressive disorder
        "370143000",  # Major depressive disorder
        "36923009",   # Major depression, single episode
        "66344007",   # Recurrent major depression
        "87512008",   # Mild major depression
        "192080009",  # Chronic depression
        "197480006",  # Anxiety disorder
        "21897009",   # Generalized anxiety disorder
        "48694002",   # Anxiety
        "73595000",   # Stress
        "47505003",   # Posttraumatic stress disorder
        "13746004",   # Bipolar disorder
        "58214004",   # Schizophrenia
        "69322001",   # Psychotic disorder
        "191736004",  # Obsessive-compulsive disorder
        "406506008",  # Attention deficit hyperactivity disorder
        "72366004",   # Eating disorder
        "56882008",   # Anorexia nervosa
        "78004001",   # Bulimia nervosa
        "6471006",    # Suicidal thoughts
        "82313006",   # Suicide attempt
        "171207006",  # Depression screening
    }),
    SUBSTANCE: frozenset({
        "7200002",    # Alcoholism
        "66590003",   # Alcohol dependence
        "15167005",   # Alcohol abuse
        "10939881000119105",  # Unhealthy alcohol drinking behavior
        "5602001",    # Opioid abuse
        "75544000",   # Opioid dependence
        "6525002",    # Dependent drug abuse
        "26416006",   # Drug abuse
        "55680006",   # Drug overdose
        "361055000",  # Misuses drugs
        "23915005",   # Alcohol rehabilitation
    }),
    HIV: frozenset({
        "86406008",   # Human immunodeficiency virus infection
        "165816005",  # HIV positive
        "62479008",   # Acquired immune deficiency syndrome
        "91947003",   # Asymptomatic HIV infection
        "31676001",   # Human immunodeficiency virus antigen test
    }),
    REPRODUCTIVE: frozenset({
        "72892002",   # Normal pregnancy
        "77386006",   # Pregnant
        "47200007",   # High risk pregnancy
        "19169002",   # Miscarriage in first trimester
        "79586000",   # Tubal pregnancy
        "35999006",   # Blighted ovum
        "398254007",  # Preeclampsia
        "198992004",  # Antepartum eclampsia
        "11687002",   # Gestational diabetes
        "10383002",   # Counseling for termination of pregnancy
        "714812005",  # Induced termination of pregnancy
        "386394001",  # Pregnancy termination care
        "252160004",  # Standard pregnancy test
        "169230002",  # Ultrasound scan for fetal viability
        "271442007",  # Fetal anatomy study
        "225158009",  # Auscultation of the fetal heart
        "274804006",  # Evaluation of uterine fundal height
        "169673001",  # Antenatal RhD antibody screening
        "51116004",   # RhD passive immunization
        "275833003",  # Alpha-fetoprotein test
        "66348005",   # Childbirth
        "11466000",   # Cesarean section
        "85548006",   # Episiotomy
        "31208007",   # Medical induction of labor
        "237001001",  # Augmentation of labor
        "65588006",   # Premature birth of newborn
        "134435003",  # Routine antenatal care
        "424441002",  # Prenatal initial visit
        "424619006",  # Prenatal visit
        "169762003",  # Postnatal visit
        "165829005",  # Gonorrhea infection test
        "269828009",  # Syphilis infection test
        "310861008",  # Chlamydia antigen test
        "90226004",   # Cytopathology procedure, preparation of smear, genital source
        "105629000",  # Chlamydial infection
        "15628003",   # Gonorrhea
        "76272004",   # Syphilis
        "240532009",  # Human papilloma virus infection
        "33839006",   # Genital herpes simplex
        "169553002",  # Insertion of subcutaneous contraceptive
        "65200003",   # Insertion of intrauterine contraceptive device
    }),
    GENETIC: frozenset({
        "443529005",  # Screening for chromosomal aneuploidy in prenatal amniotic fluid
        "267253006",  # Fetus with chromosomal abnormality
    }),
}

LOINC_CODES: dict[str, frozenset[str]] = {
    MENTAL: frozenset({
        "44249-1",    # PHQ-9 quick depression assessment panel
        "44261-6",    # PHQ-9 total score
        "55757-9",    # PHQ-2 panel
        "55758-7",    # PHQ-2 total score
        "69737-5",    # GAD-7 panel
        "70274-6",    # GAD-7 total score
    }),
    SUBSTANCE: frozenset({
        "72109-2",    # AUDIT-C panel
        "75626-2",    # AUDIT-C total score
        "82666-9",    # DAST-10 panel
        "82667-7",    # DAST-10 total score
    }),
    HIV: frozenset({
        "75622-1",    # HIV 1+2 Ab + HIV 1 p24 Ag [Presence]
        "56888-1",    # HIV 1+2 Ab + HIV 1 p24 Ag [Presence] by Immunoassay
        "7917-8",     # HIV 1 Ab [Presence]
        "7918-6",     # HIV 1+2 Ab [Presence]
        "5221-7",     # HIV 1 Ab [Presence] by Immunoblot
        "68961-2",    # HIV 1 Ab [Presence] by Immunoassay
        "29893-5",    # HIV 1 Ab [Presence] by Immunoassay (serum)
        "30361-0",    # HIV 2 Ab [Presence]
        "31201-7",    # HIV 1+2 Ab [Presence]
        "69668-2",    # HIV 1 and 2 Ab [Presence] by rapid differentiation immunoassay
        "25836-8",    # HIV 1 RNA [#/volume] (viral load)
        "20447-9",    # HIV 1 RNA [#/volume] by NAA
        "10351-5",    # HIV 1 RNA [Units/volume] by probe and target amplification
    }),
    GENETIC: frozenset({
        "51969-4",    # Genetic analysis report
        "55233-1",    # Genetic analysis master panel
        "81247-9",    # Master HL7 genetic variant reporting panel
        "69548-6",    # Genetic variant assessment
        "48018-6",    # Gene studied [ID]
        "53037-8",    # Genetic disease sequence variation interpretation
        "48004-6",    # DNA change (c.HGVS)
        "48005-3",    # Amino acid change (pHGVS)
        "81252-9",    # Discrete genetic variant
    }),
    REPRODUCTIVE: frozenset({
        "2106-3",     # Choriogonadotropin (pregnancy test) in urine
        "82810-3",    # Pregnancy status
        "11449-6",    # Pregnancy status (reported)
    }),
}

RXNORM_CODES: dict[str, frozenset[str]] = {
    REPRODUCTIVE: frozenset({
        "1367439",    # NuvaRing 0.12/0.015 MG per 24HR 21 Day Vaginal Ring
        "748856",     # Yaz 28 Day Pack
        "748962",     # Camila 28 Day Pack
        "749762",     # Seasonique 91 Day Pack
        "1000126",    # 1 ML medroxyprogesterone acetate 150 MG/ML Injection
    }),
}

# HL7 v3 sensitivity (ActCode) and confidentiality codes a source may put in ``meta.security``.
SECURITY_SYSTEMS = ("v3-ActCode", "v3-Confidentiality", "2.16.840.1.113883.5.4", "2.16.840.1.113883.5.25")
SECURITY_CODES: dict[str, str] = {
    "ETH": SUBSTANCE, "SUD": SUBSTANCE,
    "PSY": MENTAL, "PSYTHPN": MENTAL, "BH": MENTAL, "MH": MENTAL,
    "HIV": HIV,
    "GDIS": GENETIC,
    "SEX": REPRODUCTIVE, "STD": REPRODUCTIVE, "SDV": REPRODUCTIVE,
    "R": RESTRICTED, "V": RESTRICTED,
}

# Words that say the topic whatever the code system: checked in a record's names (code texts and displays).
WORDS: dict[str, tuple[str, ...]] = {
    HIV: (r"\bHIV\b", r"human immunodeficiency virus", r"(?-i:\bAIDS\b)"),
    REPRODUCTIVE: (r"pregnan", r"abortion", r"miscarriage", r"\bfetal\b", r"\bfetus\b", r"antenatal", r"prenatal",
                   r"postnatal", r"contracept", r"chlamydia", r"gonorrh", r"syphilis", r"\bgenital"),
    GENETIC: (r"genetic", r"chromosom", r"karyotype", r"\bBRCA[12]?\b", r"aneuploidy", r"\bgenomic"),
    SUBSTANCE: (r"alcoholism", r"alcohol (?:abuse|dependence|use disorder)", r"(?:opioid|drug|substance) "
                r"(?:abuse|dependence|use disorder|overdose)", r"drug overdose", r"misuses drugs"),
    MENTAL: (r"depressi(?:on|ve)", r"anxiety", r"schizo", r"bipolar", r"psychosis", r"psychotic", r"suicid",
             r"post-?traumatic stress", r"eating disorder", r"anorexia nervosa", r"bulimia"),
}

# Medicines by ingredient: no code list can hold every product, but the ingredient names are stable.
MEDICINE_WORDS: dict[str, tuple[str, ...]] = {
    REPRODUCTIVE: ("levonorgestrel", "etonogestrel", "norethindrone", "norgestimate", "drospirenone",
                   "desogestrel", "ethinyl estradiol", "medroxyprogesterone", "ulipristal", "mifepristone",
                   "vaginal ring", "intrauterine"),
    HIV: ("emtricitabine", "tenofovir", "dolutegravir", "bictegravir", "raltegravir", "elvitegravir",
          "cabotegravir", "efavirenz", "rilpivirine", "doravirine", "nevirapine", "darunavir", "atazanavir",
          "lopinavir", "zidovudine", "abacavir", "lamivudine", "maraviroc"),
    SUBSTANCE: ("buprenorphine", "methadone", "naltrexone", "disulfiram", "acamprosate", "naloxone"),
    MENTAL: ("lithium", "clozapine", "olanzapine", "quetiapine", "risperidone", "aripiprazole", "haloperidol",
             "fluoxetine", "sertraline", "citalopram", "escitalopram", "paroxetine", "venlafaxine", "duloxetine",
             "bupropion", "mirtazapine", "trazodone"),
}

_WORD_RES = {topic: re.compile("|".join(words), re.IGNORECASE) for topic, words in WORDS.items()}
_MEDICINE_RES = {topic: re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
                 for topic, words in MEDICINE_WORDS.items()}

# Where a record's names are: the concept that says what it is, per type (the rest is context, not content).
_NAME_KEYS = ("code", "medicationCodeableConcept", "vaccineCode", "type", "reasonCode", "valueCodeableConcept",
              "category", "productOrService", "diagnosisCodeableConcept", "procedureCodeableConcept", "class")
_MEDICINE_TYPES = frozenset({"MedicationRequest", "MedicationStatement", "MedicationAdministration",
                             "MedicationDispense", "Medication"})
# The links along which a sensitive record makes another one sensitive.
_LINK_KEYS = frozenset({"reasonReference", "addresses", "diagnosisReference", "condition", "focus", "result",
                        "hasMember", "derivedFrom", "evidence", "detail", "procedureReference", "basedOn",
                        "partOf"})
_SKIP_KEYS = frozenset({"meta", "identifier", "text", "contained"})
# What a visit for a sensitive reason makes sensitive: what was done and prescribed there, and its bills.
_VISIT_TYPES = frozenset({"Procedure", "MedicationRequest", "MedicationAdministration", "MedicationDispense",
                          "CarePlan", "Claim", "ExplanationOfBenefit", "ImagingStudy", "DocumentReference",
                          "ServiceRequest"})


@dataclass(frozen=True)
class Finding:
    topic: str
    reason: str           # in words: "Normal pregnancy (SNOMED CT 72892002)", "linked to: Alcoholism"


@dataclass(frozen=True)
class Flag:
    """Why a record is sensitive: one or more topics, each with the reason found first."""

    findings: tuple[Finding, ...]

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.topic for f in self.findings))

    @property
    def labels(self) -> list[str]:
        return [LABELS[t] for t in self.topics]

    def sentence(self) -> str:
        """"Sexual and reproductive health: Normal pregnancy (SNOMED CT 72892002)"; topics joined by "; "."""
        seen: dict[str, str] = {}
        for f in self.findings:
            seen.setdefault(f.topic, f.reason)
        return "; ".join(f"{LABELS[t]}: {r}" for t, r in seen.items())


def _normal_icd(code: str) -> str:
    return code.replace(".", "").replace(" ", "").upper()


def _in_ranges(code: str, ranges: tuple[tuple[str, str], ...]) -> bool:
    # A code falls in a range when its prefix of the bound's length lies between the bounds ("F32.9" in F20-F99).
    for first, last in ranges:
        n = len(first)
        head = code[:n]
        if len(head) == n and first <= head <= last[:n].ljust(n, "Z"):
            return True
    return False


def _codings(node: Any, skip_top: bool = True) -> Iterator[dict]:
    """Every coding in a record, wherever it sits, except under its metadata, identifiers and narrative."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            if isinstance(cur.get("code"), str) and "system" in cur:
                yield cur
            for key, value in cur.items():
                if isinstance(value, (dict, list)) and not (key in _SKIP_KEYS and cur is node and skip_top):
                    stack.append(value)
        elif isinstance(cur, list):
            stack.extend(v for v in cur if isinstance(v, (dict, list)))


def code_topics(system: Any, code: Any) -> tuple[str, ...]:
    """The topics one coding belongs to by the lists above (a code may have two: HIV in pregnancy)."""
    name = system_name(system)
    if name is None or not isinstance(code, str) or not code.strip():
        return ()
    code = code.strip()
    if name in (ICD10, ICD9):
        ranges = ICD10_RANGES if name == ICD10 else ICD9_RANGES
        normal = _normal_icd(code)
        return tuple(topic for topic in TOPICS if _in_ranges(normal, ranges.get(topic, ())))
    table = {SNOMED: SNOMED_CODES, LOINC: LOINC_CODES, RXNORM: RXNORM_CODES}[name]
    return tuple(topic for topic, codes in table.items() if code in codes)


def _names(resource: dict) -> Iterator[str]:
    for key in _NAME_KEYS:
        value = resource.get(key)
        for concept in value if isinstance(value, list) else [value]:
            if not isinstance(concept, dict):
                continue
            if isinstance(concept.get("text"), str):
                yield concept["text"]
            for coding in concept.get("coding") or []:
                if isinstance(coding, dict) and isinstance(coding.get("display"), str):
                    yield coding["display"]
            if isinstance(concept.get("display"), str):
                yield concept["display"]


def _shown(coding: dict) -> str:
    name = system_name(coding.get("system")) or "code"
    display = coding.get("display") if isinstance(coding.get("display"), str) else ""
    return f"{display} ({name} {coding['code']})" if display else f"{name} {coding['code']}"


def direct_findings(resource: dict) -> list[Finding]:
    """What the record itself says: its codes, its security labels, the words of its names."""
    if not isinstance(resource, dict):
        return []
    found: list[Finding] = []
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    for label in meta.get("security") or []:
        if isinstance(label, dict) and isinstance(label.get("code"), str) and isinstance(label.get("system"), str) \
                and any(s in label["system"] for s in SECURITY_SYSTEMS):
            topic = SECURITY_CODES.get(label["code"])
            if topic:
                found.append(Finding(topic, f"labelled {label['code']} by its source"))
    for coding in _codings(resource):
        for topic in code_topics(coding.get("system"), coding.get("code")):
            found.append(Finding(topic, _shown(coding)))
    names = list(_names(resource))
    for text in names:
        for topic, rx in _WORD_RES.items():
            if rx.search(text):
                found.append(Finding(topic, f"\u201c{text}\u201d"))
        if resource.get("resourceType") in _MEDICINE_TYPES:
            for topic, rx in _MEDICINE_RES.items():
                if rx.search(text):
                    found.append(Finding(topic, f"\u201c{text}\u201d"))
    return found


def _links(resource: dict) -> Iterator[str]:
    """The references a sensitive target passes its sensitivity along."""
    stack: list[tuple[Any, bool]] = [(resource, False)]
    while stack:
        node, linked = stack.pop()
        if isinstance(node, dict):
            ref = node.get("reference")
            if linked and isinstance(ref, str):
                yield ref
            for key, value in node.items():
                if isinstance(value, (dict, list)) and key not in _SKIP_KEYS:
                    stack.append((value, linked or key in _LINK_KEYS))
        elif isinstance(node, list):
            stack.extend((v, linked) for v in node if isinstance(v, (dict, list)))


def _visit(resource: dict) -> str | None:
    enc = resource.get("encounter")
    if isinstance(enc, dict) and isinstance(enc.get("reference"), str):
        return enc["reference"]
    for item in resource.get("item") or []:      # claims name their visit per item
        for e in (item.get("encounter") or []) if isinstance(item, dict) else []:
            if isinstance(e, dict) and isinstance(e.get("reference"), str):
                return e["reference"]
    ctx = resource.get("context")
    if isinstance(ctx, dict):
        e = ctx.get("encounter")
        e = e[0] if isinstance(e, list) and e else e
        if isinstance(e, dict) and isinstance(e.get("reference"), str):
            return e["reference"]
    return None


@dataclass
class _Context:
    records: Mapping[str, dict]
    aliases: Mapping[str, str]
    resolve: Callable[[str], dict | None] | None
    outside: dict[str, dict | None] = field(default_factory=dict)
    outside_findings: dict[str, list[Finding]] = field(default_factory=dict)

    def key(self, ref: str) -> str:
        return self.aliases.get(ref, ref)

    def doc(self, key: str) -> dict | None:
        if key in self.records:
            return self.records[key]
        if key not in self.outside:
            # a record the share does not hold (a visit, a diagnosis) is read only to judge the ones it does
            found = self.resolve(key) if self.resolve is not None and key.count("/") == 1 else None
            self.outside[key] = found if isinstance(found, dict) else None
        return self.outside[key]

    def findings(self, key: str, found: Mapping[str, list[Finding]]) -> list[Finding]:
        if key in found:
            return found[key]
        if key not in self.outside_findings:
            doc = self.doc(key)
            self.outside_findings[key] = direct_findings(doc) if doc is not None else []
        return self.outside_findings[key]


def _title_of(resource: dict | None) -> str:
    for text in _names(resource or {}):
        return text
    return "a record"


def flag_records(records: Mapping[str, dict], *, aliases: Mapping[str, str] | None = None,
                 resolve: Callable[[str], dict | None] | None = None) -> dict[str, Flag]:
    """Flags for the sensitive ones among ``records`` ("Type/id" -> resource), by their own content and their links.

    ``aliases`` maps other names of the same records (a document's ``urn:uuid`` fullUrls) to their keys;
    ``resolve("Type/id")`` reads a record that is not among them (the visit a procedure belongs to), or None."""
    ctx = _Context(records, aliases or {}, resolve)
    found: dict[str, list[Finding]] = {k: direct_findings(r) for k, r in records.items()}
    for key, resource in records.items():
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        visit = _visit(resource) if rtype in _VISIT_TYPES else None
        if visit is None:
            continue
        visit_key = ctx.key(visit)
        for f in list(ctx.findings(visit_key, found)):
            found[key].append(Finding(f.topic, f"part of a visit for {_title_of(ctx.doc(visit_key))}"))
    # Links can chain (a bill names a procedure that names a diagnosis): repeat until nothing changes.
    links = {k: [ctx.key(r) for r in _links(res)] for k, res in records.items() if isinstance(res, dict)}
    changed, rounds = True, 0
    while changed and rounds < 5:
        changed, rounds = False, rounds + 1
        for key, targets in links.items():
            have = {f.topic for f in found[key]}
            for target in targets:
                if target == key:
                    continue
                for f in list(ctx.findings(target, found)):
                    if f.topic not in have:
                        found[key].append(Finding(f.topic, f"linked to {_title_of(ctx.doc(target))}"))
                        have.add(f.topic)
                        changed = True
    return {k: Flag(tuple(v)) for k, v in found.items() if v}
