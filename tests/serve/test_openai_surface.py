"""The rest of the OpenAI surface through the official SDK: completions, embeddings, JSON output
enforced by grammar, tool calls, and the fields that are refused by name instead of ignored."""

from __future__ import annotations

import json

import httpx
import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient

from appliance.config import ApplianceSettings
from appliance.serving import serve_context
from serve.app import create_app
from serve.auth.keys import ApiKeyStore
from serve.auth.protocol import Role
from serve.config import ServeConfig
from tests.serve.live import LiveServer, free_port

QUESTION = [{"role": "user", "content": "Name one symptom of anemia."}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_dose",
        "description": "Look up the adult dose of a drug",
        "parameters": {"type": "object", "properties": {"drug": {"type": "string"}}, "required": ["drug"]},
    },
}


def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.keys[Role.clinician], max_retries=0)


def ledger_entries(server: LiveServer) -> list[dict]:
    lines = next(server.settings.ledger_dir.glob("api-*.jsonl")).read_text(encoding="utf-8").splitlines()
    return [json.loads(line).get("payload", {}) for line in lines if line.strip()]


def test_text_completion_streamed_or_not_gives_the_same_text(main_server: LiveServer) -> None:
    sdk = client(main_server)
    prompt = "The three classic symptoms of diabetes are"
    full = sdk.completions.create(model=main_server.model_id, prompt=prompt, max_tokens=10, temperature=0)
    assert full.object == "text_completion" and full.id.startswith("cmpl-")
    assert full.choices[0].text and full.choices[0].finish_reason in ("stop", "length")
    assert full.usage is not None and 0 < full.usage.completion_tokens <= 10
    chunks = list(sdk.completions.create(
        model=main_server.model_id, prompt=prompt, max_tokens=10, temperature=0, stream=True,
        stream_options={"include_usage": True},
    ))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == full.choices[0].text
    assert len([c for c in chunks if c.choices and c.choices[0].text]) > 1, "tokens arrive incrementally"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == full.usage.completion_tokens
    echoed = sdk.completions.create(model=main_server.model_id, prompt=prompt, max_tokens=10, temperature=0, echo=True)
    assert echoed.choices[0].text == prompt + full.choices[0].text
    # No chat template: the same words as a chat message answer differently.
    chat = sdk.chat.completions.create(
        model=main_server.model_id, messages=[{"role": "user", "content": prompt}], max_tokens=10, temperature=0)
    assert chat.choices[0].message.content != full.choices[0].text
    entry = [e for e in ledger_entries(main_server) if e.get("endpoint") == "/v1/completions"][-1]
    assert entry["prompt_tokens"] == full.usage.prompt_tokens and prompt not in json.dumps(entry)


def test_json_schema_and_json_object_are_enforced(main_server: LiveServer) -> None:
    sdk = client(main_server)
    schema = {
        "type": "object",
        "properties": {"symptom": {"type": "string", "maxLength": 40}, "severity": {"type": "integer"}},
        "required": ["symptom", "severity"],
        "additionalProperties": False,
    }
    answer = sdk.chat.completions.create(
        model=main_server.model_id, messages=QUESTION, max_tokens=60, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "finding", "schema": schema}},
    )
    assert answer.choices[0].finish_reason == "stop"
    parsed = json.loads(answer.choices[0].message.content or "")
    assert set(parsed) == {"symptom", "severity"} and isinstance(parsed["severity"], int)
    plain = sdk.chat.completions.create(model=main_server.model_id, messages=QUESTION, max_tokens=12, temperature=0)
    with pytest.raises(ValueError):
        json.loads(plain.choices[0].message.content or "")  # the same question unconstrained is prose
    anything = sdk.chat.completions.create(
        model=main_server.model_id, messages=QUESTION, max_tokens=60, temperature=0.7, seed=3,
        response_format={"type": "json_object"},
    )
    if anything.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(anything.choices[0].message.content or ""), dict)
    else:
        assert (anything.choices[0].message.content or "").startswith("{")


def test_tool_calls_forced_named_and_streamed(main_server: LiveServer) -> None:
    sdk = client(main_server)
    ask = {"role": "user", "content": "What is the adult dose of amoxicillin?"}
    answer = sdk.chat.completions.create(
        model=main_server.model_id, messages=[ask], tools=[WEATHER_TOOL], tool_choice="required",
        max_tokens=60, temperature=0,
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.function.name == "lookup_dose" and isinstance(json.loads(call.function.arguments)["drug"], str)

    stream = list(sdk.chat.completions.create(
        model=main_server.model_id, messages=[ask], tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "lookup_dose"}}, max_tokens=60, temperature=0,
        stream=True,
    ))
    deltas = [c.choices[0].delta for c in stream if c.choices]
    calls = [d.tool_calls[0] for d in deltas if d.tool_calls]
    assert calls[0].function.name == "lookup_dose" and calls[0].id
    assert "".join(c.function.arguments or "" for c in calls) == call.function.arguments
    assert [c.choices[0].finish_reason for c in stream if c.choices][-1] == "tool_calls"

    # The SDK's round trip: the call and its result go back, the model answers in prose.
    follow_up = sdk.chat.completions.create(
        model=main_server.model_id, max_tokens=12, temperature=0, tools=[WEATHER_TOOL], tool_choice="none",
        messages=[ask, choice.message.model_dump(exclude_none=True),
                  {"role": "tool", "tool_call_id": call.id, "content": "500 mg every 8 hours"}],
    )
    assert follow_up.choices[0].finish_reason in ("stop", "length") and follow_up.choices[0].message.content


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"n": 2}, "n"),
        ({"logit_bias": {"42": 5}}, "logit_bias"),
        ({"logprobs": True}, "logprobs"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"tools": [WEATHER_TOOL], "response_format": {"type": "json_object"}}, "response_format"),
        ({"tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "function": {"name": "other"}}}, "tool_choice"),
    ],
)
def test_fields_that_would_be_ignored_are_refused_by_name(main_server: LiveServer, extra: dict, field: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client(main_server).chat.completions.create(
            model=main_server.model_id, messages=QUESTION, max_tokens=4, **extra)
    assert raised.value.body["param"] == field and field in raised.value.body["message"]


def test_completion_refusals_name_the_field(main_server: LiveServer) -> None:
    sdk = client(main_server)
    for extra, field in (({"logprobs": 2}, "logprobs"), ({"suffix": "end"}, "suffix"), ({"best_of": 3}, "best_of")):
        with pytest.raises(openai.BadRequestError) as raised:
            sdk.completions.create(model=main_server.model_id, prompt="Anemia is", max_tokens=4, **extra)
        assert raised.value.body["param"] == field
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.completions.create(model=main_server.model_id, prompt=["one", "two"], max_tokens=4)
    assert raised.value.body["param"] == "prompt"
    with pytest.raises(openai.PermissionDeniedError):
        openai.OpenAI(base_url=f"{main_server.base_url}/v1", api_key=main_server.keys[Role.auditor],
                      max_retries=0).completions.create(model=main_server.model_id, prompt="Anemia is", max_tokens=2)


def test_embeddings_with_the_knowledge_base_model(knowledge_server: LiveServer) -> None:
    sdk = client(knowledge_server)
    listed = [m.id for m in sdk.models.list().data]
    assert len(listed) == 2 and listed[1].startswith("all-MiniLM-L6-v2")
    texts = ["iron deficiency anemia causes fatigue", "low haemoglobin makes patients tired", "the invoice is due"]
    result = sdk.embeddings.create(model=listed[1], input=texts)  # the SDK asks for base64 and decodes it
    vectors = np.array([d.embedding for d in result.data])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1
    floats = httpx.post(
        f"{knowledge_server.base_url}/v1/embeddings", headers=knowledge_server.auth(Role.clinician), timeout=120,
        json={"model": listed[1], "input": texts, "encoding_format": "float"},
    ).json()
    assert np.array_equal(np.array([d["embedding"] for d in floats["data"]], dtype=np.float32), vectors)
    # Alone, a text is quantized on its own activations (int8 layers): close, not bit-equal.
    alone = np.array(sdk.embeddings.create(model=listed[1], input=texts[0]).data[0].embedding)
    assert alone @ vectors[0] > 0.95
    assert result.usage.prompt_tokens > 0
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.embeddings.create(model=listed[1], input="x", dimensions=128)
    assert raised.value.body["param"] == "dimensions"
    with pytest.raises(openai.NotFoundError):
        sdk.embeddings.create(model=listed[0], input="x")
    entries = [e for e in ledger_entries(knowledge_server) if e.get("endpoint") == "/v1/embeddings"]
    entry = next(e for e in entries if e.get("status", 200) == 200)
    assert entry["prompt_tokens"] == result.usage.prompt_tokens and entry["reason"] == "embedded"
    assert {e.get("status") for e in entries} >= {400, 404}, "refusals are in the ledger too"
    assert "anemia" not in json.dumps(entry)


def test_models_lists_the_configured_id_while_loading(tmp_path) -> None:
    """No lifespan runs under a bare TestClient, so the model never loads: the state during a load."""
    settings = ApplianceSettings(home=tmp_path, serve=ServeConfig(port=free_port(), detect_phi=False))
    key, _ = ApiKeyStore(settings.api_keys_file).create(Role.clinician, "test")
    listed = TestClient(create_app(serve_context(settings))).get("/v1/models", headers={"Authorization": f"Bearer {key}"}).json()
    assert listed["data"] == [
        {"id": "SmolLM2-135M-Instruct.Q4_1", "object": "model", "created": listed["data"][0]["created"],
         "owned_by": "appliance", "ready": False}
    ]
