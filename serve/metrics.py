"""Prometheus metrics of one app instance: counts, latencies, token rates, queue depth; never content.

Each app gets its own registry (not prometheus_client's global one) so several apps, e.g. in
tests or a reload, never collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "appliance_api_requests", "HTTP requests by route and status", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "appliance_api_request_seconds", "Request latency by route", ["route"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.tokens = Counter(
            "appliance_api_tokens", "Tokens processed by kind (prompt, completion)", ["kind"], registry=self.registry
        )
        self.tokens_per_second = Histogram(
            "appliance_api_generation_tokens_per_second", "Decode speed of each finished generation",
            buckets=(1, 5, 10, 20, 40, 80, 160, 320, 640), registry=self.registry,
        )
        self.queue_depth = Gauge("appliance_api_queue_depth", "Requests waiting for a slot", registry=self.registry)
        self.active = Gauge("appliance_api_active_sequences", "Sequences being decoded", registry=self.registry)
        self.rejected = Counter(
            "appliance_api_rejected", "Requests refused by a limit", ["reason"], registry=self.registry
        )

    def observe_generation(self, prompt_tokens: int, completion_tokens: int, decode_seconds: float) -> None:
        self.tokens.labels("prompt").inc(prompt_tokens)
        self.tokens.labels("completion").inc(completion_tokens)
        if completion_tokens > 1 and decode_seconds > 0:
            self.tokens_per_second.observe((completion_tokens - 1) / decode_seconds)

    def render(self, queue_depth: int, active: int) -> bytes:
        self.queue_depth.set(queue_depth)
        self.active.set(active)
        return generate_latest(self.registry)
