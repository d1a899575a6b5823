"""codi-probe's pytest plugin (entry point ``pytest11: codi_probe``).

Claims are tests marked ``@pytest.mark.claim(id=..., statement=..., source=..., reported=...,
kind="invariant"|"empirical")`` that record their numbers through the ``claim`` fixture; the
plugin checks empirical verdicts against an expectation profile (and optionally a baseline
report) and writes a JSON report (schema ``codi_probe/schema/report.schema.json``).

The hooks and fixtures live in the modules listed in ``pytest_plugins``; add a module there to
add session fixtures.
"""

from .metadata import add_process_info, add_session_metadata
from .options import CodiOptions
from .recorder import ClaimRecorder
from .records import KINDS, VERDICTS, ClaimRecord
from .report import SCHEMA_VERSION, load_schema, validate_report

pytest_plugins = ["codi_probe.plugin.hooks", "codi_probe.plugin.fixtures", "codi_probe.plugin.catalogue",
                  "codi_probe.plugin.twin"]

__all__ = [
    "KINDS", "SCHEMA_VERSION", "VERDICTS", "ClaimRecord", "ClaimRecorder", "CodiOptions",
    "add_process_info", "add_session_metadata", "load_schema", "validate_report",
]
