"""Property-based fuzzing from the app's own /openapi.json (schemathesis): no 5xx, no off-schema response.

Small limits keep every accepted spec cheap; a bounded example count keeps the run short.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import make_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


# Built at collection: schemathesis's lazy from_fixture does not work with pytest 9.
schema = schemathesis.openapi.from_wsgi(
    "/openapi.json",
    make_app(max_depth=6, max_width=16, max_batch_size=4, max_gflop=0.02, max_probes=32),
)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_fuzz(case):
    case.call_and_validate(checks=CHECKS)
