"""Schemathesis fuzzing of every operation in the app's own OpenAPI schema, against a real uvicorn server.

Valid and invalid requests alike must never get a 5xx, and every response must
match the schema (status code, content type, headers, body). Bounded: a fixed
number of generated cases per operation keeps the run to about a minute.
"""

import hypothesis
import schemathesis
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from app.main import create_app
from app.settings import Settings

EXAMPLES_PER_OPERATION = 150

# `positive_data_acceptance` is left out on purpose: the schema cannot express every rule of a
# valid request (a text needs a letter, positions must lie inside the normalised text, model ids
# must be loaded ones), so schema-valid requests are rightly refused with 422 now and then.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]

# Invalid requests may also be refused by the body limit (413) before they are parsed at all.
FUZZ_CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [400, 404, 405, 406, 413, 415, 422]}}}
)

# The schema is the app's own, built without loading any model, so pytest can collect one test per
# operation; the requests then go to `live_server` (schemathesis' lazy fixture loader does not
# work under this pytest).
api_schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi(), config=FUZZ_CONFIG)


@api_schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_every_operation_answers_without_5xx_and_as_documented(case: schemathesis.Case, live_server: str) -> None:
    case.call_and_validate(base_url=live_server, checks=CHECKS, timeout=30)
