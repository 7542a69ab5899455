"""The package's imports point one way: every `import` statement, function bodies included."""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "retention"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(
    path: Path, package: str = "retention", modules: Collection[str] = ()
) -> Iterator[str]:
    """Every retention module `path` imports, wherever the statement is (TYPE_CHECKING too);
    `package` anchors relative imports. `from PACKAGE import MODULE` imports the module (the
    package's `__init__` is already loading when a module of it does this)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        yield from (name for name in names if name == "retention" or name.startswith("retention."))


def graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = {target for target in imported(path, package, modules) if target in modules}
        edges[name] = targets - {name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each import circle found by a depth-first walk (one path per circle)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                found.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_the_walker_sees_imports_inside_function_bodies(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "def f():\n    from retention.service import daemon\n    import retention.cli\n"
    )
    found = set(imported(source, modules={"retention.service.daemon"}))
    assert found == {"retention.service.daemon", "retention.cli"}


def test_the_cycle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_circle() -> None:
    edges = graph()
    assert len(edges) > 100, "the walker read the package"
    assert cycles(edges) == []


def test_approvals_import_nothing_from_service() -> None:
    edges = graph()
    offending = {
        module: sorted(t for t in targets if t.startswith("retention.service"))
        for module, targets in edges.items()
        if module.startswith("retention.approvals")
    }
    assert {module: found for module, found in offending.items() if found} == {}


def test_only_the_goto_layer_imports_httpx() -> None:
    users = sorted(
        module_name(path)
        for path in PACKAGE.rglob("*.py")
        if any(
            (isinstance(node, ast.Import) and any(a.name == "httpx" for a in node.names))
            or (isinstance(node, ast.ImportFrom) and node.module == "httpx")
            for node in ast.walk(ast.parse(path.read_text()))
        )
    )
    assert users
    assert all(name.startswith(("retention.goto", "retention.sandbox")) for name in users), users


def test_the_console_is_a_service_level_layer_nothing_below_imports() -> None:
    edges = graph()
    users = {
        module
        for module, found in edges.items()
        if any(t.startswith("retention.console") for t in found)
        and not module.startswith("retention.console")
    }
    assert users == {"retention.service.daemon"}, users
    reaches = {
        target
        for module, found in edges.items()
        if module.startswith("retention.console")
        for target in found
        if target.startswith(("retention.service", "retention.cli"))
    }
    assert reaches <= {"retention.service.statedir"}, reaches
