"""The layer contract (.importlinter) holds, no two modules of the project import each other
in a cycle, and a deliberate violation makes the contract fail (so the check can fail).

import-linter and grimp read the source (no module is imported); lazy imports inside
functions count like top-level ones. Tests and bench/ are outside the contract.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "delivery", "scheduler", "knowledge", "intents")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every group of modules that import each other in a cycle (Tarjan's strongly connected
    components over direct imports), each sorted; [] when the graph has no cycle."""
    modules = sorted(m for m in graph.modules if m.split(".")[0] in PACKAGES)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        # iterative DFS: (module, iterator over what it imports)
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child.split(".")[0] not in PACKAGES:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
    return sorted(cycles)


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def test_the_layer_contract_holds(capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    code = lint_imports(config_filename=str(REPO / ".importlinter"), no_cache=True)
    report = capsys.readouterr().out
    assert code == 0, report
    assert "Contracts: 4 kept, 0 broken." in report


def test_no_import_cycle_between_any_modules() -> None:
    assert import_cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: the cycle issue 9 removed, put back into the graph."""
    broken = _graph()
    broken.add_import(importer="bot.db.repo", imported="bot.consult.cases")
    cycles = import_cycles(broken)
    assert len(cycles) == 1
    assert {"bot.db.repo", "bot.consult.cases"} <= set(cycles[0])


def _copy_sources(dest: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(REPO / package, dest / package,
                        ignore=lambda folder, names: [n for n in names if not n.endswith(".py")
                                                      and not (Path(folder) / n).is_dir()
                                                      or n == "__pycache__"])
    shutil.copy(REPO / ".importlinter", dest / ".importlinter")


@pytest.mark.parametrize(("module", "line", "broken"), [
    # storage calling up into a feature (the forget-me import issue 9 removed)
    ("bot/db/repo.py", "from bot.consult.cases import anonymise_for_user", "Layers:"),
    # delivery reaching into the scheduler for a process-global context
    ("delivery/outbox.py", "from scheduler.runner import JobContext", "Layers:"),
    # an adapter calling the webhook processing
    ("bot/channels/telegram.py", "from bot.inbound import ingest_events", "Channel adapters never import"),
    # the core importing a platform SDK
    ("bot/conversation/engine.py", "import telegram", "The core never imports a platform SDK"),
    # two consultation modules importing each other
    ("bot/consult/notify.py", "from bot.consult import cases", "No import cycle"),
])
def test_a_deliberate_violation_breaks_the_contract(tmp_path, module, line, broken) -> None:
    _copy_sources(tmp_path)
    target = tmp_path / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # deliberate violation\n", encoding="utf-8")
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], check=False, cwd=tmp_path, capture_output=True,
                            text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 broken" in output or "2 broken" in output, output
    details = output.split("Broken contracts", 1)[1]     # each broken contract's name, then why
    assert broken in details, output
    assert module.rsplit("/", 1)[0].replace("/", ".") in details, output      # names where it is
