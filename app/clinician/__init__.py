"""The clinician's side of a share: scan the patient's code (``scan``), see what was verified (``verification``)
and read the records in the patient's own views, read-only and in memory only (``window``).

The work itself is in the application layer (``app.services.received``); these modules only draw it.
"""
