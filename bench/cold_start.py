"""Cold start: import + module-level setup of each function in a fresh interpreter, against
`import boto3; boto3.client("dynamodb")` in a fresh interpreter (the baseline).

Each round starts one fresh `python -I` per subject, in alternating order (baseline, then every function,
then again), in the environment a deployed function sees (template variables with dummy values, Lambda's
own variables: X-Ray active, so Powertools' Tracer patches what it patches in Lambda). The child times
`importlib.import_module("app")` from the function's folder (Lambda's /var/task) with perf_counter; the
interpreter's own start-up is common to every subject and is not counted. An audit hook in the child
refuses and records every socket connect / DNS lookup / HTTP connection: an AWS or Amazon call at import
is reported as a finding. Goal: median import time <= 1.5 x the baseline's. One extra `-X importtime`
run per subject lists the biggest top-level packages when a function misses the goal.
Rounds: 7 (--quick: 3).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench._lambda_env import LAMBDA_VARIABLES, REPO, FunctionInfo, functions, untemplated_function_dirs
from bench._report import Options, Result, Row, figure, verdict

GOAL = 1.5
# Imported by the interpreter before the clock starts.
STARTUP = frozenset({"site", "encodings", "codecs", "io", "abc", "os", "stat", "posixpath", "genericpath"})
BASELINE = "baseline: import boto3; boto3.client('dynamodb')"

# Runs in the fresh interpreter. Only `sys` and `time` are imported before the clock starts.
CHILD = r"""
import sys, time
attempts = []
def _guard(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.sendto", "socket.sendmsg",
                 "http.client.connect", "urllib.Request"):
        attempts.append(event + " " + repr(args[1:3] if event == "socket.connect" else args[:2])[:160])
        raise PermissionError("network access at import time: " + event)
sys.addaudithook(_guard)
mode, where, name = sys.argv[1:4]
import importlib
error = ""
started = time.perf_counter()
try:
    if mode == "baseline":
        import boto3
        boto3.client("dynamodb")
    else:
        sys.path.insert(0, where)
        importlib.import_module(name)
except BaseException as exc:
    error = type(exc).__name__ + ": " + str(exc)
elapsed = time.perf_counter() - started
print("BENCH-RESULT", repr({"seconds": elapsed, "modules": len(sys.modules), "network": attempts,
                            "error": error[:300]}))
"""


@dataclass
class Subject:
    label: str
    mode: str  # "baseline" or "function"
    where: str
    module: str
    env: dict[str, str]


def child_environment(variables: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "REFUNDS_"))}
    keep.pop("PYTHONPATH", None)
    return {**keep, **variables}


def subjects() -> tuple[list[Subject], list[str]]:
    infos: list[FunctionInfo] = functions()
    notes = []
    baseline_env = child_environment({**LAMBDA_VARIABLES, "AWS_LAMBDA_FUNCTION_NAME": "bench-baseline"})
    found = [Subject(BASELINE, "baseline", "", "", baseline_env)]
    for info in infos:
        found.append(
            Subject(
                info.logical_id,
                "function",
                str(info.code_dir),
                info.module,
                child_environment(info.variables),
            )
        )
    for folder in untemplated_function_dirs():
        env = child_environment({**infos[0].variables, "AWS_LAMBDA_FUNCTION_NAME": f"bench-{folder.name}"})
        found.append(Subject(f"{folder.name} (not in template.yaml)", "function", str(folder), "app", env))
        notes.append(f"functions/{folder.name}/app.py is in no template function: timed with the Globals env")
    return found, notes


def run_child(subject: Subject, *, importtime: bool = False) -> tuple[dict[str, object], str]:
    command = [sys.executable, "-I"]
    if importtime:
        command += ["-X", "importtime"]
    command += ["-c", CHILD, subject.mode, subject.where, subject.module]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, env=subject.env, cwd=REPO
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH-RESULT ")), None)
    if line is None:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{subject.label}: the child failed: {tail}")
    import ast

    report: dict[str, object] = ast.literal_eval(line.removeprefix("BENCH-RESULT "))
    return report, done.stderr


_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)$")


def top_packages(stderr: str, limit: int = 8) -> list[tuple[str, float]]:
    """Root packages (no dot) by cumulative import time in ms, from `-X importtime` output."""
    totals: dict[str, float] = {}
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match and "." not in match.group(4):
            name = match.group(4)
            totals[name] = max(totals.get(name, 0.0), int(match.group(2)) / 1000)
    return sorted(totals.items(), key=lambda item: -item[1])[:limit]


def run(options: Options) -> Result:
    rounds = options.pick_rounds(7, 3)
    found, notes = subjects()
    result = Result("cold_start", notes=notes)
    times: dict[str, list[float]] = {s.label: [] for s in found}
    modules: dict[str, int] = {}
    findings: dict[str, list[str]] = {}
    for index in range(rounds):
        order = found if index % 2 == 0 else list(reversed(found))  # alternate who goes first
        for subject in order:
            report, _ = run_child(subject)
            if report["error"]:
                findings.setdefault(subject.label, []).append(f"import FAILED: {report['error']}")
            if report["network"]:
                findings.setdefault(subject.label, []).append(f"network at import: {report['network']}")
            times[subject.label].append(float(report["seconds"]) * 1000)  # type: ignore[arg-type]
            modules[subject.label] = int(report["modules"])  # type: ignore[call-overload]
    baseline_median = statistics.median(times[BASELINE])
    case = f"fresh interpreter, import + module-level setup ({rounds} rounds, alternating)"
    result.rows.append(Row(case, BASELINE, times[BASELINE], f"{modules[BASELINE]} modules", unit="ms"))
    baseline_stderr = run_child(found[0], importtime=True)[1]
    baseline_packages = dict(top_packages(baseline_stderr, limit=1000))
    for subject in found[1:]:
        label = subject.label
        median = statistics.median(times[label])
        ratio = median / baseline_median
        # Per-round ratios, each against the same round's baseline: steadier than the medians' ratio.
        per_round = [t / b for t, b in zip(times[label], times[BASELINE], strict=True)]
        note = f"{modules[label]} modules; x{ratio:.2f} baseline: {verdict(ratio <= GOAL)} goal <= {GOAL}"
        result.rows.append(Row(case, label, times[label], note, unit="ms"))
        result.rows.append(Row(case, f"  {label} / baseline, per round", per_round, unit="ratio"))
        result.notes.append(
            f"{label}: median {figure(median)} ms vs baseline {figure(baseline_median)} ms = "
            f"x{ratio:.2f} ({verdict(ratio <= GOAL)} goal <= x{GOAL})"
        )
        for finding in sorted(set(findings.get(label, []))):
            result.notes.append(f"{label}: FINDING: {finding}")
        if ratio > GOAL:
            stderr = run_child(subject, importtime=True)[1]
            ranked = [(n, ms) for n, ms in top_packages(stderr, limit=1000) if n not in STARTUP]
            ranked = [(n, ms) for n, ms in ranked if n not in ("app", subject.module)]
            extra = [f"{n} {ms:.0f} ms" for n, ms in ranked if n not in baseline_packages][:8]
            shared = [f"{n} {ms:.0f} ms" for n, ms in ranked if n in baseline_packages][:4]
            result.notes.append(
                f"{label}: biggest imports the baseline does not make (cumulative, -X importtime): "
                f"{', '.join(extra)}; shared with the baseline: {', '.join(shared)}"
            )
    for finding in sorted(set(findings.get(BASELINE, []))):
        result.notes.append(f"baseline: FINDING: {finding}")
    return result


def main() -> int:  # `python bench/cold_start.py`
    from bench._report import print_results

    print_results([run(Options())])
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
