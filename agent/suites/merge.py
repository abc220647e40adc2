"""``deskhand test merge``: shards' outputs into one report, every audit chain verified.

Each shard folder holds ``results.jsonl`` and ``audit.db`` (with its head
checkpoint).  The merge verifies each database's chain (``audit.verify``),
copies it beside the merged report as ``audit-<n>.db`` so the HTML report and
the exports can read it, and writes one ``results.jsonl`` pointing at the
copies.  A chain that does not verify is reported and the merge exits 3.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from agent.suites.errors import SuiteError
from agent.suites.results import RESULTS_FILE, AttemptResult, ResultsFile, read_results


def merge_outputs(dirs: Sequence[Path], output: Path) -> tuple[list[AttemptResult], list[str]]:
    """The attempts of every shard (audit paths repointed) and the chain problems found."""
    from audit.verify import verify

    output.mkdir(parents=True, exist_ok=True)
    merged = ResultsFile(output / RESULTS_FILE)
    attempts: list[AttemptResult] = []
    problems: list[str] = []
    for number, folder in enumerate(dirs, 1):
        results = folder / RESULTS_FILE
        if not results.is_file():
            raise SuiteError.single(str(folder), None, "", f"no {RESULTS_FILE} here: is it a "
                                    "`deskhand test --output` folder?")
        copy = _copy_log(folder / "audit.db", output / f"audit-{number}.db")
        if copy is not None:
            report = verify(copy)
            if not report.ok:
                problems.append(f"{folder / 'audit.db'}: {report.summary()}")
        for attempt in read_results(results):
            attempt.audit_db = str(copy) if copy is not None else ""
            merged.append(attempt)
            attempts.append(attempt)
    return attempts, problems


def _copy_log(source: Path, target: Path) -> Path | None:
    """Copy an audit database with its head checkpoint; None when the shard has none."""
    if not source.is_file():
        return None
    shutil.copyfile(source, target)
    for suffix in (".head", "-wal", "-shm"):
        extra = source.with_name(source.name + suffix)
        if extra.is_file():
            shutil.copyfile(extra, target.with_name(target.name + suffix))
    return target
