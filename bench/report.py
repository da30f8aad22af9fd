"""Turn the runs' measurements into tables of medians and a verdict per budget line.

This machine's speed drifts between runs, so every figure is the median of
the rounds (with the spread where a budget depends on it), and each ratio
compares agenthost with the aiohttp relay measured in the same ``make bench``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.scenarios import ALL_SCENARIOS, BASELINE, MANY_STREAMS, TARGETS, Scenario

Record = dict[str, object]
CPU_RATIO_BUDGET = 1.5
DELIVERED_BUDGET = 0.98


def _number(record: Record, key: str) -> float | None:
    value = record.get(key)
    return float(value) if isinstance(value, int | float) else None


def _values(records: Sequence[Record], key: str) -> list[float]:
    return [v for r in records if (v := _number(r, key)) is not None]


def median(records: Sequence[Record], key: str) -> float | None:
    values = _values(records, key)
    return statistics.median(values) if values else None


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _spread(records: Sequence[Record], key: str, digits: int = 0) -> str:
    values = _values(records, key)
    if not values:
        return "-"
    middle = _fmt(statistics.median(values), digits)
    if len(values) < 2:
        return middle
    return f"{middle} ({_fmt(min(values), digits)}-{_fmt(max(values), digits)})"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _other_load(record: Record) -> float | None:
    """Percent of the server's core used by other programs (this machine is shared)."""
    cores = record.get("core_busy_pct")
    server = _number(record, "server_cpu_pct")
    if not isinstance(cores, list) or not cores or cores[0] is None or server is None:
        return None
    return max(0.0, float(cores[0]) - server)


@dataclass(frozen=True)
class Column:
    title: str
    cell: Callable[[Sequence[Record]], str]


def _columns(streaming: bool) -> list[Column]:
    ttft = "added TTFT" if streaming else "added latency"
    return [
        Column("req/s", lambda rs: _fmt(median(rs, "requests_per_s"), 1)),
        Column("tokens/s", lambda rs: _fmt(median(rs, "tokens_per_s"))),
        Column("CPU-ms / 1k tokens", lambda rs: _spread(rs, "server_cpu_ms_per_1k_tokens")),
        Column("server CPU", lambda rs: _fmt(median(rs, "server_cpu_pct")) + "%"),
        Column(f"{ttft} p50 ms", lambda rs: _fmt(median(rs, "added_ttft_p50_ms"), 1)),
        Column(f"{ttft} p99 ms", lambda rs: _spread(rs, "added_ttft_p99_ms", 1)),
        Column("gap p99 ms", lambda rs: _fmt(median(rs, "gap_p99_ms"), 1)),
        Column("delivered", lambda rs: _pct(median(rs, "delivered"))),
        Column("errors", lambda rs: _fmt(sum(_values(rs, "errors")))),
        Column("others on server core", _other_load_cell),
        Column("harness CPU", _harness_cell),
    ]


def _other_load_cell(records: Sequence[Record]) -> str:
    values = [v for r in records if (v := _other_load(r)) is not None]
    return _fmt(statistics.median(values)) + "%" if values else "-"


def _harness_cell(records: Sequence[Record]) -> str:
    """The load generator's and the upstream's CPU: near 100% would mean they set the pace."""
    values = [
        a + b
        for r in records
        if (a := _number(r, "loadgen_cpu_pct")) is not None
        and (b := _number(r, "upstream_cpu_pct")) is not None
    ]
    return _fmt(statistics.median(values)) + "%" if values else "-"


def select(records: Sequence[Record], target: str, scenario: str) -> list[Record]:
    return [r for r in records if r["target"] == target and r["scenario"] == scenario]


def scenario_table(records: Sequence[Record], scenario: Scenario) -> str:
    columns = _columns(scenario.streaming)
    rounds = len({r["round"] for r in records if r["scenario"] == scenario.key})
    lines = [
        f"### ({scenario.key}) {scenario.title}: median of {rounds} runs (min-max)",
        "",
        "| server | " + " | ".join(c.title for c in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for target in TARGETS:
        rows = select(records, target, scenario.key)
        if rows:
            lines.append(f"| {target} | " + " | ".join(c.cell(rows) for c in columns) + " |")
    ratios = _ratios(records, scenario)
    if ratios:
        lines += ["", ratios]
    return "\n".join(lines)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _ratios(records: Sequence[Record], scenario: Scenario) -> str:
    ours = select(records, "agenthost", scenario.key)
    base = select(records, BASELINE, scenario.key)
    if not ours or not base:
        return ""
    cpu = _ratio(
        median(ours, "server_cpu_ms_per_1k_tokens"), median(base, "server_cpu_ms_per_1k_tokens")
    )
    ttft = _ratio(median(ours, "added_ttft_p99_ms"), median(base, "added_ttft_p99_ms"))
    return (
        f"agenthost / {BASELINE}: CPU per token x{_fmt(cpu, 2)}, "
        f"added {'TTFT' if scenario.streaming else 'latency'} p99 x{_fmt(ttft, 2)}"
    )


@dataclass(frozen=True)
class Verdict:
    line: str
    passed: bool | None  # None: not measured in this run

    def render(self) -> str:
        mark = {True: "PASS", False: "FAIL", None: "n/a "}[self.passed]
        return f"- **{mark}** {self.line}"


def verdicts(records: Sequence[Record], many: Sequence[Record]) -> list[Verdict]:
    out: list[Verdict] = []
    a_ours, a_base = select(records, "agenthost", "a"), select(records, BASELINE, "a")
    cpu_ours = median(a_ours, "server_cpu_ms_per_1k_tokens")
    cpu_base = median(a_base, "server_cpu_ms_per_1k_tokens")
    ratio = _ratio(cpu_ours, cpu_base)
    out.append(
        Verdict(
            f"(a) CPU per 1,000 tokens within {CPU_RATIO_BUDGET}x the aiohttp relay's: "
            f"agenthost {_fmt(cpu_ours)} ms vs {_fmt(cpu_base)} ms = x{_fmt(ratio, 2)}",
            None if ratio is None else ratio <= CPU_RATIO_BUDGET,
        )
    )
    b_ours, b_base = select(records, "agenthost", "b"), select(records, BASELINE, "b")
    delivered = median(b_ours, "delivered")
    errors = sum(_values(b_ours, "errors"))
    out.append(
        Verdict(
            f"(b) all of 256 streams delivered (>= {DELIVERED_BUDGET:.0%} of the tokens asked "
            f"for, no errors): agenthost {_pct(delivered)}, {errors:.0f} errors "
            f"({BASELINE}: {_pct(median(b_base, 'delivered'))})",
            None if delivered is None else delivered >= DELIVERED_BUDGET and errors == 0,
        )
    )
    ttft_ours = median(b_ours, "added_ttft_p99_ms")
    ttft_base = median(b_base, "added_ttft_p99_ms")
    out.append(
        Verdict(
            f"(b) added TTFT p99 no worse than the aiohttp relay's: agenthost "
            f"{_fmt(ttft_ours, 1)} ms vs {_fmt(ttft_base, 1)} ms",
            None if ttft_ours is None or ttft_base is None else ttft_ours <= ttft_base,
        )
    )
    ours = [r for r in many if r["target"] == "agenthost"]
    if ours:
        record = ours[0]
        streams = MANY_STREAMS.clients
        ok = (
            _number(record, "errors") == 0
            and _number(record, "unfinished") == 0
            and _number(record, "requests") == streams
            and _number(record, "peak_inflight") == streams
        )
        out.append(
            Verdict(
                f"{streams:,} concurrent streams on one worker without an error: "
                f"{_fmt(_number(record, 'requests'))} completed, "
                f"{_fmt(_number(record, 'peak_inflight'))} open at once, "
                f"{_fmt(_number(record, 'errors'))} errors",
                ok,
            )
        )
    else:
        out.append(Verdict(f"{MANY_STREAMS.clients:,} concurrent streams: not run", None))
    return out


def many_table(many: Sequence[Record]) -> str:
    scenario = MANY_STREAMS
    profile = scenario.profile
    lines = [
        f"### {scenario.title} ({profile.tokens} tokens {profile.gap_ms} ms apart, "
        f"first after {profile.ttft_ms} ms; opened over {scenario.ramp:.0f} s)",
        "",
        "| server | completed | open at once | errors | tokens | seconds | server CPU "
        "| added TTFT p50 ms | p99 ms | gap p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in many:
        lines.append(
            f"| {r['target']} | {_fmt(_number(r, 'requests'))} | "
            f"{_fmt(_number(r, 'peak_inflight'))} | {_fmt(_number(r, 'errors'))} | "
            f"{_fmt(_number(r, 'tokens'))} / {_fmt(_number(r, 'tokens_expected'))} | "
            f"{_fmt(_number(r, 'seconds'), 1)} | {_fmt(_number(r, 'server_cpu_pct'))}% | "
            f"{_fmt(_number(r, 'added_ttft_p50_ms'), 1)} | "
            f"{_fmt(_number(r, 'added_ttft_p99_ms'), 1)} | {_fmt(_number(r, 'gap_p99_ms'), 1)} |"
        )
        kinds = r.get("error_kinds")
        if isinstance(kinds, dict) and kinds:
            lines.append(f"|  | errors: {kinds} |")
    return "\n".join(lines)


def render(records: Sequence[Record], many: Sequence[Record]) -> str:
    parts = [
        scenario_table(records, s)
        for s in ALL_SCENARIOS
        if any(r["scenario"] == s.key for r in records)
    ]
    if many:
        parts.append(many_table(many))
    parts.append("### Budget\n\n" + "\n".join(v.render() for v in verdicts(records, many)))
    return "\n\n".join(parts)
