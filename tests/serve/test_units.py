"""Pieces with sharp edges, tested directly: stop strings, redaction, rate limiting, key checks, TLS, egress."""

from __future__ import annotations

import datetime
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.config import ApplianceSettings
from appliance.serving import serve_context
from deid.detection.spans import DetectedSpan
from deid.egress import EgressBlockedError
from serve.app import create_app
from serve.auth.keys import ApiKeyStore
from serve.auth.protocol import Role
from serve.auth.service import RateLimiter
from serve.config import ServeConfig
from serve.engine.text import TextAssembler
from serve.errors import RateLimitError
from serve.privacy.service import redact
from tests.serve.live import free_port


def test_stop_string_split_across_tokens_is_never_emitted() -> None:
    assembler = TextAssembler(("</answer>",))
    emitted = []
    for piece in [b"The dose ", b"is 5 mg.</", b"ans", b"wer> trailing"]:
        text, stopped = assembler.feed(piece)
        emitted.append(text)
        if stopped:
            break
    assert "".join(emitted) == "The dose is 5 mg." and stopped


def test_multibyte_characters_split_across_tokens() -> None:
    assembler = TextAssembler(())
    data = "café 5 µg".encode()
    parts = [assembler.feed(data[i : i + 1])[0] for i in range(len(data))]
    assert "".join(parts) + assembler.flush() == "café 5 µg"


def test_redact_merges_overlaps_and_keeps_the_rest() -> None:
    text = "Seen John Smith on 2021-04-12 in Boston."
    spans = [DetectedSpan(5, 15, "PERSON", 0.9), DetectedSpan(10, 15, "LAST_NAME", 0.5),
             DetectedSpan(19, 29, "DATE", 0.9), DetectedSpan(33, 39, "LOCATION", 0.8)]
    assert redact(text, spans) == "Seen [PERSON] on [DATE] in [LOCATION]."


def test_rate_limiter_refills_per_key() -> None:
    limiter = RateLimiter(per_minute=120)
    for _ in range(120):
        limiter.charge("a")
    with pytest.raises(RateLimitError) as refused:
        limiter.charge("a")
    assert refused.value.headers["Retry-After"] == "1"
    limiter.charge("b")
    time.sleep(0.6)
    limiter.charge("a")


def test_key_store_refuses_tampered_and_foreign_keys(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "keys.json")
    key, info = store.create(Role.clinician)
    assert store.verify(key) == info
    prefix, key_id, secret = key.split("_", 2)
    for wrong in (f"{prefix}_{key_id}_{secret[:-1]}x", f"{prefix}_{key_id}", f"sk_{key_id}_{secret}", "", key + "x"):
        assert store.verify(wrong) is None
    other, _ = ApiKeyStore(tmp_path / "other.json").create(Role.admin)
    assert store.verify(other) is None


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_serves_https_only_and_egress_guard_is_on(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    settings = ApplianceSettings(home=tmp_path / "home", serve=ServeConfig(
        port=port, tls_cert=cert, tls_key=key, detect_phi=False, threads=1, context_length=256, parallel=1))
    app = create_app(serve_context(settings))
    with pytest.raises(EgressBlockedError):
        socket.create_connection(("192.0.2.10", 443), timeout=1)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ssl_certfile=str(cert), ssl_keyfile=str(key)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert httpx.get(f"https://127.0.0.1:{port}/healthz", verify=str(cert), timeout=5).json() == {"status": "ok"}
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_a_corrupt_model_keeps_readyz_failed_with_the_reason(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 64)
    settings = ApplianceSettings(home=tmp_path / "home", serve=ServeConfig(model=broken, detect_phi=False, threads=1))
    with TestClient(create_app(serve_context(settings))) as client:
        deadline = time.monotonic() + 30
        while (ready := client.get("/readyz")).json()["status"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert ready.status_code == 503 and ready.json()["status"] == "failed"
        assert "broken.gguf" in ready.json()["reason"]
        assert client.get("/healthz").status_code == 200
