"""The package's house plan as a test: no import circle among nncomp's modules, and no import inside a function
without a comment (on its line) saying why it is there."""
import ast, re
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]/'nncomp'
REGISTRY_STRING = re.compile(r'^(nncomp(?:\.\w+)+):\w+$')   # 'nncomp.engine.prune:magnitude', resolved on first use

def module_name(path:Path) -> str:
    "nncomp/engine/train.py -> nncomp.engine.train"
    parts = path.relative_to(PKG.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)

def modules() -> dict:
    return {module_name(p): p for p in sorted(PKG.rglob('*.py')) if p.name != '_modidx.py'}

def imported(node, here:str, known:set) -> list:
    "The nncomp modules an import statement names (relative imports resolved against module `here`)."
    if isinstance(node, ast.Import): names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ''
        if node.level:
            pkg = here.split('.')[:-node.level] if not (PKG/Path(*here.split('.')[1:])/'__init__.py').exists() else here.split('.')
            pkg = here.split('.')[:len(here.split('.')) - node.level]
            base = '.'.join(pkg + ([base] if base else []))
        names = [f'{base}.{a.name}' for a in node.names] + [base]
    else: return []
    return [n for n in names if n in known]

def graph():
    "{module: {(imported module, line, inside a function, the line's text)}} over nncomp/, registry strings included."
    mods, edges = modules(), {}
    for name, path in mods.items():
        text = path.read_text(); lines, tree = text.splitlines(), ast.parse(text)
        inner = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)}
        out = set()
        for node in ast.walk(tree):
            for m in imported(node, name, set(mods)):
                if m != name: out.add((m, node.lineno, id(node) in inner, lines[node.lineno - 1]))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and REGISTRY_STRING.match(node.value):
                target = REGISTRY_STRING.match(node.value).group(1)
                if target in mods and target != name: out.add((target, node.lineno, True, lines[node.lineno - 1]))
        edges[name] = out
    return edges

def cycles(edges:dict) -> list:
    "The strongly connected components with more than one module (Tarjan)."
    index, low, stack, on, out = {}, {}, [], set(), []
    def visit(v):
        index[v] = low[v] = len(index); stack.append(v); on.add(v)
        for w in {e[0] for e in edges.get(v, ())}:
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    for v in edges:
        if v not in index: visit(v)
    return out

def test_cycles_found_on_a_made_up_graph():
    e = {'a': {('b', 1, False, '')}, 'b': {('c', 1, False, '')}, 'c': {('a', 1, True, '')}, 'd': {('a', 1, False, '')}}
    assert cycles(e) == [['a', 'b', 'c']]
    assert cycles({'a': {('b', 1, False, '')}, 'b': set()}) == []

def test_the_graph_sees_the_package():
    e = graph()
    assert 'nncomp.engine.train' in e and 'nncomp.runs.store' in e and 'nncomp.compress.ledger' in e
    assert any(m == 'nncomp.config' for m, *_ in e['nncomp.engine.train'])

def test_no_import_circle():
    found = cycles(graph())
    assert not found, f'import circles among nncomp modules: {found}'

def test_imports_inside_functions_say_why():
    bare = [f'{m}:{line}: {text.strip()}' for m, out in graph().items() for _, line, inner, text in sorted(out, key=lambda e: e[1])
            if inner and 'import' in text and '#' not in text]
    assert not bare, 'imports inside functions without a comment saying why:\n' + '\n'.join(bare)
