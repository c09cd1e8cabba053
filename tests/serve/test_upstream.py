"""``serve.engine = upstream`` against a real engine: a second appliance server process on loopback,
started and supervised by the gateway from its settings. No mock anywhere: the engine is the
same OpenAI-compatible server hospitals would otherwise call directly."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from appliance.config import ApplianceSettings
from serve.auth.keys import ApiKeyStore
from serve.auth.protocol import Role
from serve.config import EngineKind, ServeConfig
from tests.serve.live import LiveServer, free_port, live_server

MODEL = "SmolLM2-135M-Instruct.Q4_1"
QUESTION = [{"role": "user", "content": "Name one symptom of anemia."}]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str, str]]:
    engine_home = tmp_path_factory.mktemp("engine")
    engine_key, _ = ApiKeyStore(ApplianceSettings(home=engine_home).api_keys_file).create(Role.clinician, "gateway")
    port = free_port()
    command = [
        "env", f"APPLIANCE_HOME={engine_home}", "APPLIANCE_SERVE__THREADS=1", "APPLIANCE_SERVE__CONTEXT_LENGTH=512",
        "APPLIANCE_SERVE__PARALLEL=2", "APPLIANCE_SERVE__DETECT_PHI=false", "APPLIANCE_SERVE__RATE_LIMIT_PER_MINUTE=0",
        sys.executable, "-m", "appliance", "serve", "--port", str(port),
    ]
    engine_url = f"http://127.0.0.1:{port}"
    settings = ApplianceSettings(home=tmp_path_factory.mktemp("gateway"), serve=ServeConfig(
        port=free_port(), engine=EngineKind.upstream, upstream_url=engine_url, upstream_model=MODEL,
        upstream_api_key=engine_key, upstream_command=command, upstream_health_path="/readyz",
        upstream_start_timeout_s=240, detect_phi=True, max_tokens_limit=64,
    ))
    with live_server(settings, ready_timeout=300) as server:
        yield server, engine_url, engine_key


def sdk(base_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)


def test_gateway_answers_what_the_engine_answers_keeping_keys_and_ledger(gateway: tuple[LiveServer, str, str]) -> None:
    server, engine_url, engine_key = gateway
    front, engine = sdk(server.base_url, server.keys[Role.clinician]), sdk(engine_url, engine_key)
    ask = {"model": MODEL, "messages": QUESTION, "max_tokens": 10, "temperature": 0}
    through = front.chat.completions.create(**ask)
    direct = engine.chat.completions.create(**ask)
    assert through.choices[0].message.content == direct.choices[0].message.content
    assert through.usage is not None and direct.usage is not None
    assert through.usage.prompt_tokens == direct.usage.prompt_tokens
    assert through.usage.completion_tokens == direct.usage.completion_tokens
    streamed = list(front.chat.completions.create(**ask, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == direct.choices[0].message.content
    completion = front.completions.create(model=MODEL, prompt="Anemia is", max_tokens=6, temperature=0)
    assert completion.choices[0].text == engine.completions.create(
        model=MODEL, prompt="Anemia is", max_tokens=6, temperature=0).choices[0].text

    with pytest.raises(openai.PermissionDeniedError):
        sdk(server.base_url, server.keys[Role.auditor]).chat.completions.create(**ask)
    with pytest.raises(openai.BadRequestError) as refused:
        front.chat.completions.create(**ask, response_format={"type": "json_object"})
    assert refused.value.body["param"] == "response_format"
    with pytest.raises(openai.BadRequestError):
        front.chat.completions.create(**{**ask, "max_tokens": 65})

    # PHI screening happens at the gateway; its ledger holds the types and the engine's counts, no text.
    phi = front.chat.completions.create(
        model=MODEL, max_tokens=4, temperature=0,
        messages=[{"role": "user", "content": "Maria Gonzalez, seen on 04/12/2021, has a cough. Next step?"}],
    )
    ledger = next(server.settings.ledger_dir.glob("api-*.jsonl")).read_text(encoding="utf-8")
    assert "Gonzalez" not in ledger and "cough" not in ledger
    assert '"DATE' in ledger and f'"prompt_tokens":{phi.usage.prompt_tokens}' in ledger.replace(" ", "")
    metrics = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    assert 'route="/v1/chat/completions"' in metrics and "Gonzalez" not in metrics


def test_a_killed_engine_is_restarted_and_serving_resumes(gateway: tuple[LiveServer, str, str]) -> None:
    server, _, _ = gateway
    supervisor = server.app.state.services.models.supervisor
    assert supervisor is not None and supervisor.healthy and supervisor.pid is not None
    first_pid, restarts = supervisor.pid, supervisor.restarts
    os.killpg(first_pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while httpx.get(f"{server.base_url}/readyz", timeout=5).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert httpx.get(f"{server.base_url}/readyz", timeout=5).status_code == 503, "not ready while the engine is down"
    assert supervisor.wait_healthy(240)
    assert supervisor.restarts == restarts + 1 and supervisor.pid not in (None, first_pid)
    answer = sdk(server.base_url, server.keys[Role.clinician]).chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=4, temperature=0)
    assert answer.choices[0].message.content
