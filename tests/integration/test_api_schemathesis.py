"""schemathesis against the API's own OpenAPI spec: every operation, generated and
negated bodies, a key with every scope. No answer is a 5xx; every status and body matches
what the spec declares. (``FRAUD_SCHEMA_EXAMPLES`` examples per operation; ``make fuzz``
runs more.)"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from services.api.app import ApiContext, create_app, openapi_document
from tests.integration.api_fixtures import Keys

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("FRAUD_SCHEMA_EXAMPLES", "40"))
# A schema-violating body is refused with 422, or 413 when it is also over the size limit.
REFUSALS = ["400", "401", "403", "413", "422", "429"]
schema = schemathesis.openapi.from_dict(
    openapi_document(),
    config=schemathesis.Config.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}}
    ),
)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms(case: schemathesis.Case, context: ApiContext, keys: Keys) -> None:
    case.call_and_validate(
        app=create_app(context),
        headers=keys.everything,
        # A schema-valid body may still be refused with a declared 422: the time window,
        # card numbers in any string and duplicate keys are checks no JSON Schema states.
        excluded_checks=[positive_data_acceptance],
    )
