"""The layer contract (.importlinter) holds, no two modules of the project import each other
in a cycle, and a deliberate violation makes the contract fail (so the check can fail).

import-linter and grimp (which it ships) read the source, no module is imported; lazy imports
inside functions count like top-level ones. Tests and bench/ are outside the contract. Both
run in a fresh interpreter on the source tree only (see ``_clean_env``).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "delivery", "scheduler", "knowledge", "intents")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")   # import-linter (dev extras)


def import_cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other in a cycle (Tarjan's strongly connected
    components over ``imports``: module → the modules it imports directly), each sorted;
    [] when there is no cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(imports):
        if root in index:
            continue
        # iterative DFS: (module, iterator over what it imports)
        work = [(root, iter(sorted(imports[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in imports:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(imports[child]))))
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


def _clean_env(root: Path) -> dict[str, str]:
    # A fresh interpreter that sees only ``root``'s packages: inside pytest, tests/ is on sys.path
    # and tests/scheduler would pass for the ``scheduler`` package.
    return {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}


def project_imports(root: Path = REPO) -> dict[str, set[str]]:
    """module → the project modules it imports directly (grimp, run on ``root``'s source)."""
    script = (
        "import json, sys, grimp\n"
        f"packages = {PACKAGES!r}\n"
        "graph = grimp.build_graph(*packages, cache_dir=None)\n"
        "json.dump({m: sorted(i for i in graph.find_modules_directly_imported_by(m)\n"
        "                     if i.split('.')[0] in packages) for m in graph.modules}, sys.stdout)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], check=True, cwd=root, capture_output=True, text=True,
                            env=_clean_env(root), timeout=120)
    return {module: set(imported) for module, imported in json.loads(result.stdout).items()}


def run_lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], check=False, cwd=root, capture_output=True,
                          text=True, env=_clean_env(root), timeout=120)


def test_the_layer_contract_holds() -> None:
    result = run_lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


def test_the_graph_is_the_project_source() -> None:
    imports = project_imports()
    assert "scheduler.runner" in imports and "delivery.outbox" in imports
    assert not any(".test_" in module for module in imports)          # not tests/scheduler
    assert "bot.db.models" in imports["delivery.outbox"]


def test_no_import_cycle_between_any_modules() -> None:
    assert import_cycles(project_imports()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: the cycle issue 9 removed, put back into the graph."""
    imports = project_imports()
    imports["bot.db.repo"].add("bot.consult.cases")
    cycles = import_cycles(imports)
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
    result = run_lint_imports(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 broken" in output or "2 broken" in output, output
    details = output.split("Broken contracts", 1)[1]     # each broken contract's name, then why
    assert broken in details, output
    assert module.rsplit("/", 1)[0].replace("/", ".") in details, output      # names where it is
