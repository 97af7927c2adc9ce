"""The bad-input corpus through every command, each case its own process under a timeout and an
address-space limit, plus the .inrz/weights mutation fuzz; writes benchmarks/results/fuzz.md.

The corpus (tests/corpus) regenerates its cases each run: damaged, mislabelled, huge-declared,
truncated, empty and silent signal files of every kind; weights files with bad metadata; .inrz files
with foreign headers behind recomputed checksums; NaN, inf, 0, negative, huge and non-numbers for
every numeric option; paths that are missing, a folder for a file, a file for a folder, under /proc,
unwritable; bench specs and stores; --resume with foreign or damaged checkpoints. Each case runs as

    timeout -k 5 120 inrkit ARGS...   with RLIMIT_AS=8GiB (`prlimit --as=8GiB`), in its own folder

and ends clean, traceback, hang, wrong output, partial folder, data loss or unclear (see
tests/corpus/run.py). The default test suite runs the same cases in-process (tests/test_corpus.py).

Run: `.venv/bin/python benchmarks/fuzz.py` (about an hour on 2 busy cores; `--workers 2` halves it,
`--only number/` picks cases by id, `--mode in-process` is the quick look).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]

from corpus import IN_PROCESS, OUTCOMES, SUBPROCESS, Workspace, all_cases, run_case  # noqa: E402
from corpus.run import subprocess_prefix  # noqa: E402

COLUMNS = ("cases", "clean", "traceback", "hang", "wrong output", "partial folder", "data loss", "unclear")


def run_corpus(mode: str, timeout: float, memory: str, only: str | None, workers: int,
               root: Path) -> tuple[list, list]:
    """All (or the matching) cases, run and classified: (cases, verdicts) in case order."""
    profile = IN_PROCESS if mode == "in-process" else SUBPROCESS
    workspace = Workspace(root, profile, mode)
    _ = workspace.base  # the good files, built once in this process
    cases = [c for c in all_cases(profile) if only is None or only in c.id]

    def one(case: object) -> object:
        verdict = run_case(case, workspace, mode=mode, timeout=timeout, memory=memory, keep=False)
        if verdict.outcome != "clean":
            print(f"{verdict.outcome:>14}  {case.id}: {verdict.detail[:160]}", flush=True)
        return verdict

    if mode == "subprocess" and workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            verdicts = list(pool.map(one, cases))
    else:
        verdicts = [one(case) for case in cases]
    return cases, verdicts


def table(cases: list, verdicts: list) -> str:
    """The counts table: one row per family and a total row."""
    families = sorted({c.family for c in cases})
    lines = ["| family | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for family in [*families, "total"]:
        chosen = [v for c, v in zip(cases, verdicts) if family in ("total", c.family)]
        counts = Counter(v.outcome for v in chosen)
        row = [str(len(chosen))] + [str(counts.get(o, 0)) for o in COLUMNS[1:]]
        name = f"**{family}**" if family == "total" else family
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def failures(cases: list, verdicts: list) -> str:
    rows = [f"- `{c.id}` — **{v.outcome}**: {v.detail}  \n  `inrkit {' '.join(c.argv)}`"
            for c, v in zip(cases, verdicts) if v.outcome != "clean"]
    return "\n".join(rows) if rows else "None."


def file_fuzz(mutations: int, seed: int) -> str:
    """The .inrz/weights mutation fuzz (benchmarks/fuzz_files.py), when it is there."""
    if mutations <= 0:
        return "Not run (--file-mutations 0)."
    try:
        from fuzz_files import run_file_fuzz
    except ImportError as exc:
        return f"Skipped: benchmarks/fuzz_files.py is not importable ({exc})."
    counts = run_file_fuzz(mutations, seed)
    keys = ("mutations", "ok", "rejected", "other", "hangs", "silent", "peak_mb", "seconds")
    return ("| " + " | ".join(keys) + " |\n" + "|---" * len(keys) + "|\n| "
            + " | ".join(f"{counts.get(k, 0):.0f}" if isinstance(counts.get(k), float) else str(counts.get(k, ""))
                         for k in keys) + " |")


def commit() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("fork", "subprocess", "in-process"), default="fork",
                        help="fork: each case a forked child of this process (inrkit imported once) under RLIMIT_AS "
                             "and a timeout; subprocess: each case `timeout prlimit inrkit ...` (slower: an import "
                             "per case); in-process: CliRunner with a lowered sample limit (the test's mode)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case before it is a hang")
    parser.add_argument("--memory", default="8GiB", help="address-space limit per case (prlimit --as)")
    parser.add_argument("--workers", type=int, default=1, help="cases at once (subprocess mode)")
    parser.add_argument("--only", help="run only cases whose id contains this")
    parser.add_argument("--file-mutations", type=int, default=5000, help="mutations for fuzz_files (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fuzz.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="inrkit-fuzz-") as tmp:
        cases, verdicts = run_corpus(args.mode, args.timeout, args.memory, args.only, args.workers, Path(tmp))
    corpus_seconds = time.perf_counter() - start
    counts = table(cases, verdicts)
    print(counts)
    files = file_fuzz(args.file_mutations, args.seed)
    print(files)
    each = {"subprocess": " ".join(subprocess_prefix(args.timeout)) + f" inrkit ARGS... with "
                          f"RLIMIT_AS={args.memory} (as `prlimit --as={args.memory}`)",
            "fork": f"a forked child running `inrkit ARGS...` with RLIMIT_AS={args.memory}, killed after "
                    f"{args.timeout:.0f} s",
            "in-process": "in-process (CliRunner), INRKIT_MAX_SAMPLES=262144"}[args.mode]
    command = "python benchmarks/fuzz.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = (f"# Bad-input corpus and file fuzz\n\nCommand: `{command.strip()}` (at {commit()}, "
              f"{time.strftime('%Y-%m-%d %H:%M')}).\nEach corpus case: `{each}` in its own folder; "
              f"{len(cases)} cases in {corpus_seconds / 60:.1f} min on this machine (shared, so times are rough).\n\n"
              f"## Corpus (tests/corpus)\n\n{counts}\n\nOutcomes: {', '.join(OUTCOMES)} (tests/corpus/run.py says "
              f"what each means).\n\n## Cases that did not end cleanly\n\n{failures(cases, verdicts)}\n\n"
              f"## .inrz / weights mutation fuzz (benchmarks/fuzz_files.py, seed {args.seed})\n\n{files}\n")
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
        print(f"wrote {args.out}")
    return 0 if all(v.outcome == "clean" for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
