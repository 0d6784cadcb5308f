"""FHIR records in the vault: import from every source, provenance, no duplicates, queries, export, IPS.

Entry points: ``importer.ImportService`` (with ``ImportOptions``, ``CancelToken``), ``query`` (list, search,
timeline, series), ``export.export`` (bundle, ndjson, ips), ``shc.TrustStore`` (trusted card issuers), and
``schema.migrate_records_v1`` (registered by ``vault.schema``). Only ``fhir_models`` imports ``fhir.resources``;
only ``shc`` does JOSE. Nothing here imports Qt or touches the network.
"""
