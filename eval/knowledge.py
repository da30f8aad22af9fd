"""``make eval``: how well the knowledge agents find and answer, over agenthost's own docs.

For each retrieval backend (memory BM25, SQLite FTS5, PostgreSQL full-text
search when a server answers on loopback) it ingests ``docs/`` into a fresh
index and runs every question of ``eval/questions.json``:

- retrieval: hit@1 and hit@5 (an expected source among the first 1 or 5
  passages), and search latency;
- the refusal decision (taken before the model is called): unanswerable
  questions refused, answerable ones not;
- answers of the ``faq`` agent on the embedded model: an answerable question
  is right when the reply (without its sources footer) holds an expected fact,
  an unanswerable one when the reply is "I don't know"; and the latency of a
  whole turn.

Run ``python eval/knowledge.py --help`` for options (``--modes``, ``--no-answers``,
``--verbose``). Everything is local: the embedded model, SQLite in a temporary
folder, and a PostgreSQL database made for the run and dropped after it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agenthost import Message, run_turn
from agenthost.agents.knowledge import faq_agent
from agenthost.knowledge.base import KnowledgeIndex
from agenthost.knowledge.bundled import bundled_docs_dir, sync_bundled_docs
from agenthost.knowledge.context import KnowledgeOptions
from agenthost.knowledge.grounding import relevance
from agenthost.knowledge.url import open_knowledge_index
from agenthost.llm.base import ChatModel
from agenthost.llm.local import LocalChatModel
from agenthost.settings import Settings

QUESTIONS = Path(__file__).with_name("questions.json")
POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
KB = "eval"
REFUSAL = "i don't know"


@dataclass
class Tally:
    mode: str
    hit1: int = 0
    hit5: int = 0
    answerable: int = 0
    refused_unanswerable: int = 0
    unanswerable: int = 0
    refused_answerable: int = 0
    right_answers: int = 0
    right_quoted: int = 0
    right_refusals: int = 0
    search_ms: list[float] = field(default_factory=list)
    turn_s: list[float] = field(default_factory=list)


def fact_found(facts: Sequence[str], reply: str) -> bool:
    text = reply.lower().replace("`", "").replace("*", "")
    for fact in facts:
        wanted = fact.lower()
        if re.fullmatch(r"\w+", wanted):
            if re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", text):
                return True
        elif wanted in text:
            return True
    return False


def answer_of(reply: str) -> str:
    """What the model wrote: the reply without the quote and sources the agent adds."""
    return with_quote(reply).split("\n\n> ", 1)[0]


def with_quote(reply: str) -> str:
    """The reply with the quoted passage, without the list of sources."""
    return reply.split("\n\nSources: ", 1)[0].split("\n\nClosest sources: ", 1)[0]


async def evaluate(
    mode: str,
    index: KnowledgeIndex,
    questions: dict[str, Any],
    model: ChatModel | None,
    options: KnowledgeOptions,
    verbose: bool,
) -> Tally:
    tally = Tally(mode)
    await sync_bundled_docs(index, kb=KB)
    agent = faq_agent(index, options)
    items = [(q, True) for q in questions["answerable"]]
    items += [(q, False) for q in questions["unanswerable"]]
    for item, answerable in items:
        question = item["question"]
        started = time.perf_counter()
        hits = await index.search(question, kb=KB, limit=5)
        tally.search_ms.append((time.perf_counter() - started) * 1000)
        score = await relevance(index, question, hits[: options.passages], kb=KB)
        refused = score < options.min_coverage
        if answerable:
            tally.answerable += 1
            sources = [h.source for h in hits]
            tally.hit1 += bool(sources[:1]) and sources[0] in item["sources"]
            tally.hit5 += any(s in item["sources"] for s in sources)
            tally.refused_answerable += refused
        else:
            tally.unanswerable += 1
            tally.refused_unanswerable += refused
        if model is None:
            continue
        started = time.perf_counter()
        result = await run_turn(agent, model, [], Message.user(question))
        tally.turn_s.append(time.perf_counter() - started)
        reply = answer_of(result.text)
        if answerable:
            right = fact_found(item["facts"], reply) and not reply.lower().startswith(REFUSAL)
            tally.right_answers += right
            quoted = with_quote(result.text)
            tally.right_quoted += fact_found(item["facts"], quoted) and not refused
        else:
            right = reply.lower().startswith(REFUSAL)
            tally.right_refusals += right
        if verbose:
            mark = "ok " if right else "BAD"
            print(f"  [{mode}] {mark} {question}\n        -> {reply[:160]!r}", file=sys.stderr)
    return tally


@asynccontextmanager
async def opened(mode: str, folder: Path) -> AsyncIterator[KnowledgeIndex]:
    if mode == "memory":
        async with open_knowledge_index("memory://") as index:
            yield index
    elif mode == "sqlite":
        async with open_knowledge_index(f"sqlite:///{folder / 'eval.db'}") as index:
            yield index
    else:
        async with postgres_database() as url, open_knowledge_index(url) as index:
            yield index


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    import asyncpg

    name = f"agenthost_eval_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield POSTGRES.rsplit("/", 1)[0] + f"/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def postgres_reachable() -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", 5432), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def table(tallies: list[Tally], answers: bool) -> str:
    head = "| retrieval | hit@1 | hit@5 | refused: unanswerable, answerable | search p50 / p95 |"
    rule = "|---|---|---|---|---|"
    if answers:
        head += " right: all, answerable (+ quote), unanswerable | turn p50 / p95 |"
        rule += "---|---|"
    lines = [head, rule]
    for t in tallies:
        row = (
            f"| {t.mode} | {t.hit1 / t.answerable:.2f} | {t.hit5 / t.answerable:.2f} "
            f"| {t.refused_unanswerable}/{t.unanswerable}, {t.refused_answerable}/{t.answerable} "
            f"| {statistics.median(t.search_ms):.1f} / {percentile(t.search_ms, 0.95):.1f} ms |"
        )
        if answers:
            right = t.right_answers + t.right_refusals
            total = t.answerable + t.unanswerable
            row += (
                f" {right / total:.2f}, {t.right_answers / t.answerable:.2f} "
                f"({t.right_quoted / t.answerable:.2f}), {t.right_refusals / t.unanswerable:.2f} "
                f"| {statistics.median(t.turn_s):.2f} / {percentile(t.turn_s, 0.95):.2f} s |"
            )
        lines.append(row)
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> int:
    questions = json.loads(QUESTIONS.read_text())
    if bundled_docs_dir() is None:
        print("error: agenthost's docs/ are not found", file=sys.stderr)
        return 1
    modes = [m for m in args.modes.split(",") if m]
    if "postgres" in modes and not await postgres_reachable():
        print("PostgreSQL is not reachable on 127.0.0.1:5432: skipping it", file=sys.stderr)
        modes.remove("postgres")
    options = KnowledgeOptions(kb=KB, min_coverage=args.min_coverage)
    model = None if args.no_answers else LocalChatModel(Settings(_env_file=None))
    tallies = []
    try:
        if model is not None:
            await model.start()
        with tempfile.TemporaryDirectory() as folder:
            for mode in modes:
                async with opened(mode, Path(folder)) as index:
                    tallies.append(
                        await evaluate(mode, index, questions, model, options, args.verbose)
                    )
    finally:
        if model is not None:
            await model.aclose()
    answerable, unanswerable = len(questions["answerable"]), len(questions["unanswerable"])
    print(
        f"\nKnowledge eval, {datetime.now(UTC):%Y-%m-%d}, {platform.machine()} "
        f"({platform.processor() or platform.system()}), {answerable} answerable and "
        f"{unanswerable} unanswerable questions over docs/; answers by the embedded model "
        f"(faq agent, min coverage {args.min_coverage}).\n"
    )
    print(table(tallies, model is not None))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="memory,sqlite,postgres", help="retrieval backends")
    parser.add_argument("--no-answers", action="store_true", help="retrieval only (fast)")
    parser.add_argument("--min-coverage", type=float, default=KnowledgeOptions().min_coverage)
    parser.add_argument("--verbose", action="store_true", help="each answer, on stderr")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
