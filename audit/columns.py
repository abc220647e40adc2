"""Facts about the audit tables' columns that readers need without SQLAlchemy.

``deskhand audit verify`` and ``deskhand sessions`` read the file with plain
sqlite3 so that they start at once; they take these from here, and
:mod:`audit.models` re-exports them.
"""

from __future__ import annotations

# Columns whose value is canonical JSON text (decoded before comparing or reading).
JSON_COLUMNS: dict[str, frozenset[str]] = {
    "sessions": frozenset({"triage", "extra"}),
    "steps": frozenset({"action", "proposed_raw", "rule_ids", "output", "timings_ms", "usage",
                        "target_element"}),
    "approvals": frozenset({"rule_ids"}),
    "events": frozenset({"data"}),
    "blobs": frozenset(),
    "schema_version": frozenset(),
}

# Columns that the ledger does not carry; verify checks them another way.
# (``png`` is what version 1 called ``data``.)
UNCHAINED_COLUMNS: dict[str, frozenset[str]] = {"blobs": frozenset({"data", "png"})}

# The primary-key column of each state table.
PRIMARY_KEYS: dict[str, str] = {
    "sessions": "id", "steps": "id", "approvals": "id", "events": "id",
    "blobs": "sha256", "schema_version": "version",
}
