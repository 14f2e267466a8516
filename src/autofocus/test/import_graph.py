"""The import graph of a Python package, read from its source (no module is executed).

Every ``import`` and ``from ... import`` counts, at any depth: module level, inside a
function (a lazy import) or under ``if TYPE_CHECKING``. Relative imports are resolved
against the importing module. Used by the layout tests of both packages.
"""
import ast
import pathlib


def module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    """``root/pkg/sub/mod.py`` -> ``pkg.sub.mod``; a package's ``__init__`` -> the package."""
    parts = list(path.relative_to(root).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def imports_of(source: str, name: str, is_package: bool) -> set[str]:
    """Absolute names of the modules (or module attributes) that ``source`` imports."""
    found = set()
    base = name.split('.') if is_package else name.split('.')[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[:len(base) - node.level + 1]
                module = '.'.join(anchor + ([node.module] if node.module else []))
            else:
                module = node.module or ''
            # `from pkg import sub` may import a submodule: record both spellings.
            found.add(module)
            found.update(f'{module}.{alias.name}' for alias in node.names)
    return found


def package_graph(package_dir: pathlib.Path) -> dict[str, set[str]]:
    """{module: names it imports} for every module under ``package_dir``."""
    root = package_dir.parent
    graph = {}
    for path in sorted(package_dir.rglob('*.py')):
        name = module_name(path, root)
        graph[name] = imports_of(path.read_text(), name, path.name == '__init__.py')
    return graph


def internal_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Only the edges between modules of the graph itself (attribute imports dropped)."""
    return {module: {target for target in targets if target in graph and target != module}
            for module, targets in graph.items()}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module of the graph that ``start`` imports, directly or through others."""
    edges = internal_edges(graph)
    seen, todo = set(), [start]
    while todo:
        for target in edges.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def top_level(name: str) -> str:
    return name.split('.')[0]
