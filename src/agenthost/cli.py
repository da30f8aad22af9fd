"""The ``agenthost`` command: ``serve``, ``chat``, ``keys``, ``db upgrade``, ``ingest``, ``kb``,
``version``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agenthost import __version__
from agenthost.console import run_chat
from agenthost.errors import AgentHostError
from agenthost.settings import Settings

app = typer.Typer(
    name="agenthost",
    help="Run an AI agent as a production web service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="Model id: local, test, openai:<model> (default: AGENTHOST_MODEL)."
    ),
]
AgentOption = Annotated[
    str | None,
    typer.Option(
        "--agent", "-a", help="An agent's name, or 'package.module:attribute' for your own."
    ),
]


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        typer.echo(f"error: invalid settings: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def chat(
    model: ModelOption = None,
    agent: AgentOption = None,
    temperature: Annotated[
        float | None, typer.Option(min=0.0, max=2.0, help="Sampling temperature (0: greedy).")
    ] = None,
) -> None:
    """Chat with an agent in the terminal (one message per line when input is piped)."""
    raise typer.Exit(run_chat(_settings(), model_id=model, agent=agent, temperature=temperature))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address (default AGENTHOST_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default AGENTHOST_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default AGENTHOST_WORKERS).")
    ] = None,
    model: ModelOption = None,
    agent: AgentOption = None,
    reload: Annotated[bool, typer.Option(help="Restart when the code changes (dev).")] = False,
    insecure: Annotated[
        bool, typer.Option(help="Allow a non-loopback address with authentication off.")
    ] = False,
    ssl_certfile: Annotated[str | None, typer.Option(help="Serve HTTPS: certificate.")] = None,
    ssl_keyfile: Annotated[str | None, typer.Option(help="Serve HTTPS: its key.")] = None,
) -> None:
    """Serve the HTTP API (and the chat page) with uvicorn."""
    from agenthost.server.serve import run_server

    overrides = {
        "host": host,
        "port": port,
        "workers": workers,
        "model": model,
        "agent": agent,
        "ssl_certfile": ssl_certfile,
        "ssl_keyfile": ssl_keyfile,
    }
    raise typer.Exit(run_server(_settings(), overrides, reload=reload, insecure=insecure))


keys_app = typer.Typer(help="API keys (AGENTHOST_AUTH=keys).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for (shown in listings).")],
    rpm: Annotated[int | None, typer.Option(min=0, help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(min=0, help="Model tokens per minute.")] = None,
    max_streams: Annotated[int | None, typer.Option(min=0, help="Replies running at once.")] = None,
    admin: Annotated[bool, typer.Option(help="May list every key's sessions.")] = False,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    import asyncio

    from agenthost.auth.commands import create_key

    created = asyncio.run(
        create_key(_settings(), name=name, rpm=rpm, tpm=tpm, max_streams=max_streams, admin=admin)
    )
    typer.echo(created.secret)
    typer.echo(
        f"created key {created.record.prefix}… ({created.record.name}); store it now: "
        "it cannot be shown again",
        err=True,
    )


@keys_app.command("list")
def keys_list() -> None:
    """Every key: prefix, name, limits, last use, and whether it is revoked."""
    import asyncio

    from agenthost.auth.commands import list_keys

    def shown(value: int | None) -> str:
        return "default" if value is None else str(value or "off")

    header = ("PREFIX", "NAME", "RPM", "TPM", "STREAMS", "ADMIN", "LAST USED", "STATUS")
    typer.echo("{:<13} {:<20} {:<8} {:<8} {:<8} {:<6} {:<17} {}".format(*header))
    for key in asyncio.run(list_keys(_settings())):
        used = key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "never"
        status = "revoked" if key.revoked_at else "active"
        typer.echo(
            f"{key.prefix:<13} {key.name[:20]:<20} {shown(key.rpm):<8} {shown(key.tpm):<8} "
            f"{shown(key.max_streams):<8} {'yes' if key.admin else 'no':<6} {used:<17} {status}"
        )


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id or its shown prefix.")],
) -> None:
    """Revoke a key: every worker and replica refuses it within a few seconds."""
    import asyncio

    from agenthost.auth.commands import revoke_key

    record = asyncio.run(revoke_key(_settings(), key))
    typer.echo(f"revoked {record.prefix}… ({record.name})")


db_app = typer.Typer(help="The session database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (default AGENTHOST_DATABASE_URL).")
    ] = None,
) -> None:
    """Apply the schema migrations the database is missing (safe to run again)."""
    import asyncio

    from agenthost.stores.url import describe_url, upgrade

    settings = _settings()
    url = database_url or settings.database_url
    status = asyncio.run(upgrade(url, options=settings.store_options()))
    applied = ", ".join(str(v) for v in status.applied) or "none (already up to date)"
    typer.echo(f"{describe_url(url)}: schema version {status.version}; applied: {applied}")


KnowledgeBaseOption = Annotated[
    str | None,
    typer.Option("--kb", help="The knowledge base (default AGENTHOST_KNOWLEDGE_BASE)."),
]


@app.command()
def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Files or folders: Markdown, text, HTML, PDF.")
    ],
    kb: KnowledgeBaseOption = None,
    prune: Annotated[
        bool, typer.Option(help="Remove documents that are gone from the given folders.")
    ] = False,
) -> None:
    """Add documents to a knowledge base (unchanged files are skipped, changed ones replaced)."""
    import asyncio

    from rich.progress import Progress

    from agenthost.knowledge.commands import ingest_paths

    settings = _settings()
    name = kb or settings.knowledge_base
    with Progress(transient=True) as bar:
        task = bar.add_task("ingesting", total=None)

        def advance(source: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=source[-40:])

        report = asyncio.run(ingest_paths(settings, paths, kb=name, prune=prune, progress=advance))
    for source, problem in report.failed.items():
        typer.echo(f"skipped {source}: {problem}", err=True)
    typer.echo(
        f"{name}: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged, {len(report.removed)} removed, "
        f"{len(report.failed)} failed ({report.chunks} new chunks)"
    )
    if report.failed:
        raise typer.Exit(1)


kb_app = typer.Typer(help="Knowledge bases for the faq and research agents.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")


@kb_app.command("list")
def kb_list(
    kb: Annotated[
        str | None, typer.Argument(help="List this knowledge base's documents instead.")
    ] = None,
) -> None:
    """The knowledge bases with their size, or one base's documents."""
    import asyncio

    from agenthost.knowledge.commands import list_bases, list_documents

    settings = _settings()
    if kb is not None:
        typer.echo(f"{'SOURCE':<48} {'CHUNKS':>6}  {'INGESTED':<16}  TITLE")
        for doc in asyncio.run(list_documents(settings, kb)):
            when = doc.ingested_at.strftime("%Y-%m-%d %H:%M")
            typer.echo(f"{doc.source:<48} {doc.chunks:>6}  {when:<16}  {doc.title}")
        return
    typer.echo(f"{'NAME':<24} {'DOCUMENTS':>9} {'CHUNKS':>7}  UPDATED")
    for base in asyncio.run(list_bases(settings)):
        when = base.updated_at.strftime("%Y-%m-%d %H:%M") if base.updated_at else "-"
        typer.echo(f"{base.name:<24} {base.documents:>9} {base.chunks:>7}  {when}")


@kb_app.command("remove")
def kb_remove(
    kb: Annotated[str, typer.Argument(help="The knowledge base.")],
    source: Annotated[
        list[str] | None,
        typer.Option("--source", help="Remove only this document (repeatable)."),
    ] = None,
) -> None:
    """Remove a knowledge base, or some of its documents."""
    import asyncio

    from agenthost.knowledge.commands import remove

    removed = asyncio.run(remove(_settings(), kb, source or None))
    typer.echo(f"{kb}: removed {removed} document(s)")


@app.command()
def version() -> None:
    """Print agenthost's version."""
    typer.echo(__version__)


def main() -> None:
    try:
        app()
    except AgentHostError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise SystemExit(1) from None
