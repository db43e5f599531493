"""Issue 17: the API schema fuzzed with schemathesis (a bounded number of examples): no 5xx."""

import pytest

from dalle.server.app import create_app
from dalle.server.models import ModelRegistry, load_model

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a test dependency")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402


@pytest.fixture(scope="module")
def app(tiny_unclip):
    registry = ModelRegistry()
    registry.add(load_model(str(tiny_unclip)))  # tiny and fast: every valid request draws
    return create_app(registry)


def test_no_input_gets_a_5xx(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures, statuses = [], []

    def checker(label: str, strategy):
        @settings(max_examples=25, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=strategy)
        def check(case):
            response = case.call()
            statuses.append((label, response.status_code))
            if response.status_code >= 500:
                failures.append((label, case.body, response.status_code, response.text[:200]))

        return check

    # inputs the schema allows, then inputs it forbids (wrong types, missing or extra fields,
    # out-of-range numbers): both must be answered without a 5xx
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for operation in schema.get_all_operations():
            op = operation.ok()
            try:
                checker(f"{mode.value} {op.label}", op.as_strategy(mode))()
            except Unsatisfiable:  # an operation without inputs has no invalid ones
                assert mode == GenerationMode.NEGATIVE, op.label
    assert not failures, failures
    drawn = {label for label, status in statuses if status == 200}
    assert any("positive" in label and "generations" in label for label in drawn)
    refused = {label for label, status in statuses if 400 <= status < 500}
    assert any("negative" in label and "generations" in label for label in refused)
    assert any("negative" in label and "edits" in label for label in refused)
