"""schemathesis over the served OpenAPI document, in-process (WSGI, no server).

Every operation of /api/v1/openapi.json gets generated requests — its examples, the coverage
phase's boundary and negative values, then a bounded fuzzing run — sent with a demo supervisor's
Bearer token where the document asks for one. The run fails on any 5xx, any status the operation
does not document, and any body that breaks its documented schema (test_openapi.py checks
that every secured operation refuses a request without credentials).

Bounded for CI by the number of examples, not by time (schemathesis's `max-time` turns the
fuzzing phase into a loop that runs until the time is up): few examples per operation, no
shrinking, no example database, a fixed seed and derandomized generation, so a run is the same
run everywhere. The rate limits and failure budgets are raised for the run (they are tested in
test_guessing.py); everything else is the app as it ships.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from schemathesis.config import SchemathesisConfig  # noqa: E402

pytestmark = pytest.mark.slow

RAISED = "100000/hour"
LIMITS = (
    "SUBMIT_RATE_LIMIT",
    "TRACK_RATE_LIMIT",
    "TRACK_FAILURE_LIMIT",
    "LOGIN_FAILURE_LIMIT_IP",
    "LOGIN_FAILURE_LIMIT_USER",
)
SEED = 20260112
FUZZ_EXAMPLES = 40  # per operation, on top of the examples and coverage phases
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    # Not "ignored_auth": in this version its re-sent request passes `max_redirects` to werkzeug's
    # test client in-process (a TypeError); test_openapi.py sends every secured operation without
    # credentials instead.
)


def _config(token: str, tracking_no: str, access_code: str) -> SchemathesisConfig:
    # Real values for some draws, so the success answers (and their schemas) are exercised too:
    # a case the supervisor sees, and its citizen's tracking number and access code.
    known = {"probability": 0.5}
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "color": False,
            "generation": {
                "max-examples": FUZZ_EXAMPLES,
                "deterministic": True,
                "no-shrink": True,
                "database": "none",
            },
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "checks": {
                "enabled": False,
                **{name: {"enabled": True} for name in CHECKS},
            },
            "auth": {"openapi": {"bearerAuth": {"bearer": token}}},
            "dictionaries": {
                "tracking_no": {"values": [tracking_no]},
                "access_code": {"values": [access_code]},
            },
            "parameters": {
                "path.ref": {"dictionary": "tracking_no", **known},
                "body.tracking_no": {"dictionary": "tracking_no", **known},
                "body.access_code": {"dictionary": "access_code", **known},
                "body.into": {"dictionary": "tracking_no", **known},
            },
        }
    )


def _run(schema) -> tuple[list[str], int, float]:
    """Run every phase; (one line per distinct failure or error, requests sent, seconds)."""
    from schemathesis.engine import Status, events, from_schema

    problems: dict[str, str] = {}
    requests = 0
    seconds = 0.0
    for event in from_schema(schema).execute():
        if isinstance(event, (events.ScenarioFinished, events.FuzzScenarioFinished)):
            requests += len(event.recorder.interactions)
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status != Status.FAILURE or check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    interaction = event.recorder.interactions.get(case_id)
                    status = interaction.response.status_code if interaction and interaction.response else "-"
                    key = f"{event.recorder.label} · {check.name} · {failure.title}"
                    problems.setdefault(
                        key,
                        f"{key} (status {status})\n  {failure.message.strip()[:600]}\n"
                        f"  {check.failure_info.code_sample.strip()[:1500]}",
                    )
        elif isinstance(event, events.NonFatalError):
            problems.setdefault(
                f"{event.label} · error", f"{event.label} · error: {event.info.title}: {event.value!r}"
            )
        elif isinstance(event, events.FatalError):
            raise event.exception
        elif isinstance(event, events.EngineFinished):
            assert event.stop_reason == "completed", f"schemathesis stopped: {event.stop_reason}"
            seconds = event.running_time
    return list(problems.values()), requests, seconds


@pytest.fixture
def api_schema(app, auth, submit):
    for name in LIMITS:
        app.config[name] = RAISED
    token = auth("demo-supervisor")["Authorization"].removeprefix("Bearer ")
    case = submit(name="张三", phone="13812345678")  # real-name: the identity reveal can succeed
    submit()  # a second case, for merges
    return schemathesis.openapi.from_wsgi(
        "/api/v1/openapi.json", app, config=_config(token, case["tracking_no"], case["access_code"])
    )


def test_api_matches_its_document(api_schema):
    problems, requests, seconds = _run(api_schema)
    print(f"schemathesis: {requests} requests in {seconds:.0f} s")
    assert requests > 500, "schemathesis sent almost nothing: is the document served?"
    assert not problems, f"{len(problems)} distinct problems:\n\n" + "\n\n".join(problems)
