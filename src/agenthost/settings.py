"""``Settings``: every option of agenthost, read from ``AGENTHOST_*`` variables and ``.env``.

This is the only module that reads the environment. Nothing builds a
``Settings`` at import time: the CLI and ``create_app`` build one and pass it
down. The OpenAI-compatible provider also honours the OpenAI SDK's variables
(``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID``,
``OPENAI_PROJECT_ID``) so existing setups just work.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from agenthost.stores.base import StoreOptions


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "agenthost"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AGENTHOST_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # -- which model and agent -------------------------------------------------
    model: str | None = Field(
        default=None,
        description="Model id: 'local', 'test', 'openai:<model>'. Unset: openai when "
        "OPENAI_API_KEY or a base URL is set, else the embedded local model.",
    )
    agent: str = Field(default="assistant", description="The default agent's name.")
    agents: list[str] = Field(
        default_factory=list,
        description="Extra agents to host, as 'package.module:attribute' references.",
    )

    # -- OpenAI-compatible provider ------------------------------------------------
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AGENTHOST_OPENAI_API_KEY", "OPENAI_API_KEY"),
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AGENTHOST_OPENAI_BASE_URL", "OPENAI_BASE_URL"),
        description="Base URL of any OpenAI-compatible server (vLLM, Ollama, llama-server).",
    )
    openai_organization: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AGENTHOST_OPENAI_ORGANIZATION", "OPENAI_ORG_ID"),
        description="Sent as OpenAI-Organization, for keys that belong to several organizations.",
    )
    openai_project: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AGENTHOST_OPENAI_PROJECT", "OPENAI_PROJECT_ID"),
        description="Sent as OpenAI-Project.",
    )
    openai_model: str = Field(
        default="gpt-4o-mini", description="Model used when AGENTHOST_MODEL is unset."
    )
    openai_context_window: int = Field(default=128_000, ge=1024)
    openai_connect_timeout: float = Field(default=10.0, gt=0)
    openai_first_token_timeout: float = Field(default=60.0, gt=0)
    openai_idle_timeout: float = Field(default=30.0, gt=0)
    openai_total_timeout: float = Field(default=600.0, gt=0)
    openai_max_retries: int = Field(default=2, ge=0, le=10)
    openai_max_connections: int = Field(default=4096, ge=1)
    breaker_failures: int = Field(
        default=5, ge=1, description="Failures in a row that make a remote model fail fast."
    )
    breaker_cooldown_seconds: float = Field(
        default=30.0, gt=0, description="How long a remote model fails fast before a probe."
    )

    # -- the embedded local model ----------------------------------------------
    local_model_path: Path | None = Field(
        default=None, description="A GGUF file to run instead of the bundled Gemma 3 270M."
    )
    local_context_window: int = Field(default=4096, ge=512, le=131_072)
    local_threads: int | None = Field(default=None, ge=1)
    local_max_reply_tokens: int = Field(default=256, ge=1)
    cache_dir: Path = Field(default_factory=_default_cache_dir)

    # -- knowledge (the faq and research agents) ---------------------------------
    knowledge_database_url: str | None = Field(
        default=None,
        description="Where knowledge bases live; unset: the sessions' database "
        "(kept in memory with memory:// or redis://).",
    )
    knowledge_base: str = Field(
        default="default",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="The knowledge base the faq and research agents search.",
    )
    knowledge_bundled_docs: bool = Field(
        default=True, description="Keep agenthost's own docs in that knowledge base."
    )
    knowledge_min_coverage: float = Field(
        default=0.45,
        ge=0.0,
        le=1.0,
        description="Share of a question's words the best passage must hold for a "
        "model without tools to answer (else: I don't know).",
    )

    # -- authentication and limits ------------------------------------------------
    auth: Literal["none", "keys"] = Field(
        default="none", description="'keys': every API request needs an API key."
    )
    auth_cache_seconds: float = Field(
        default=2.0, ge=0, description="A revoked key stops working within this long."
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for what workers and replicas share: rate limits, stream slots.",
    )
    rate_limit_rpm: int = Field(
        default=120, ge=0, description="Requests per minute per key (per IP without auth); 0: off."
    )
    rate_limit_tpm: int = Field(
        default=0, ge=0, description="Model tokens per minute per key (per IP); 0: off."
    )
    max_streams: int = Field(
        default=16, ge=0, description="Replies running at once per key (per IP); 0: off."
    )
    max_turn_seconds: float = Field(
        default=300.0, gt=0, description="Wall time one turn may take, tool steps included."
    )
    max_tool_steps: int = Field(
        default=8, ge=1, le=100, description="Most model calls (tool steps) in one turn."
    )

    # -- the web service -----------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64, description="Worker processes.")
    database_url: str = Field(
        default="sqlite:///./data/agenthost.db",
        description="Where sessions live: sqlite:///path, postgresql://..., redis://..., memory://",
    )
    database_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for the database before answering 503."
    )
    database_pool_size: int = Field(default=10, ge=1, le=1000)
    database_migrate: bool = Field(default=True, description="Apply schema migrations at startup.")
    idempotency_ttl_seconds: float = Field(default=86_400.0, gt=0)
    session_ttl_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Redis only: expire sessions idle this long (unset: keep forever).",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (JSON list).",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest request body.")
    max_message_chars: int = Field(default=5000, ge=1, le=5000)
    max_reply_tokens: int = Field(
        default=4096, ge=1, description="Ceiling for a request's max_tokens."
    )
    run_retention_seconds: float = Field(
        default=900.0, ge=0, description="How long a finished run's events stay replayable."
    )
    sse_ping_seconds: float = Field(default=15.0, gt=0)
    sse_retry_ms: int = Field(default=3000, ge=0)
    lease_ttl_seconds: float = Field(
        default=30.0, gt=0, description="A crashed reply frees its session after this long."
    )
    history_messages: int = Field(
        default=200, ge=1, description="Most stored messages a model call may see."
    )
    shutdown_grace_seconds: float = Field(default=25.0, ge=0)
    ssl_certfile: Path | None = Field(default=None, description="Serve HTTPS with this cert.")
    ssl_keyfile: Path | None = Field(default=None, description="The certificate's key.")

    # -- observability ---------------------------------------------------------
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="'auto': JSON lines, or readable text when stderr is a TTY."
    )
    log_level: str = Field(default="info", pattern=r"(?i)^(debug|info|warning|error|critical)$")
    log_content: bool = Field(
        default=False, description="Debug only: log the text of messages and replies."
    )
    metrics_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("AGENTHOST_METRICS_DIR", "PROMETHEUS_MULTIPROC_DIR"),
        description="Shared directory for metrics of several worker processes.",
    )
    otel_enabled: bool = Field(
        default=False, description="OpenTelemetry tracing (needs the otel extra)."
    )
    otel_exporter: Literal["otlp", "console", "none"] = Field(
        default="otlp", description="Where spans go; OTLP reads the standard OTEL_* variables."
    )

    def store_options(self) -> StoreOptions:
        ttl = self.session_ttl_seconds
        return StoreOptions(
            timeout=self.database_timeout,
            pool_size=self.database_pool_size,
            idempotency_ttl=timedelta(seconds=self.idempotency_ttl_seconds),
            redis_ttl=timedelta(seconds=ttl) if ttl is not None else None,
            migrate=self.database_migrate,
        )

    def knowledge_url(self) -> str:
        return self.knowledge_database_url or self.database_url

    def openai_configured(self) -> bool:
        return self.openai_api_key is not None or self.openai_base_url is not None

    def resolved_model_id(self) -> str:
        if self.model:
            return self.model
        if self.openai_configured():
            return f"openai:{self.openai_model}"
        return "local"
