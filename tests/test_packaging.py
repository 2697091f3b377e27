"""What a user installs and opens: the requirement lists of settings.ini (the bare install is the library, without the
report's plotting and statistics), the extras the docs name, a bare import, and the kernel the notebooks name."""
import configparser, json, re, shlex, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT_ONLY = {'matplotlib', 'scipy', 'seaborn', 'papermill', 'ipykernel', 'dask', 'scikit-image', 'pyarrow'}

def settings() -> configparser.SectionProxy:
    "settings.ini's [DEFAULT], read as setup.py reads it."
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini', encoding='utf-8')
    return cfg['DEFAULT']

def names(key:str) -> set:
    "The distribution names of a requirement list of settings.ini (versions and extras dropped)."
    return {re.match(r'[A-Za-z0-9_.-]+', r).group(0).lower() for r in shlex.split(settings().get(key, ''))}

def extras() -> set:
    "The extras setup.py declares: one per `<name>_requirements` of settings.ini."
    return {k[:-len('_requirements')] for k in settings() if k.endswith('_requirements')}

def notebooks() -> list:
    "The notebooks of nbs/ (JupyterLab's checkpoints left out)."
    return [f for f in sorted(ROOT.glob('nbs/**/*.ipynb')) if '.ipynb_checkpoints' not in f.parts]

def test_bare_install_leaves_the_report_out():
    core, study = names('requirements'), names('study_requirements')
    assert not core & REPORT_ONLY, core & REPORT_ONLY
    assert {'matplotlib', 'scipy'} <= study and {'torch', 'numpy', 'safetensors'} <= core

def test_study_imports_name_every_package_of_the_extra():
    from nncomp.runs.study import STUDY_IMPORTS, STUDY_MODULES
    assert set(STUDY_IMPORTS) == names('study_requirements')
    assert set(STUDY_IMPORTS.values()) <= set(STUDY_MODULES)

def test_library_imports_without_the_study_extra():
    "With every module of the study extra made unimportable, the library's modules still import."
    from nncomp.runs.study import STUDY_MODULES
    code = (f'import sys\nfor m in {list(STUDY_MODULES)!r}: sys.modules[m] = None\n'
            'import nncomp.compress.posttrain, nncomp.engine.train, nncomp.compress.ledger, nncomp.data.datasets\n'
            'import nncomp.runs.study\nprint("ok")')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == 'ok', r.stderr[-3000:]

def test_every_extra_the_docs_name_exists():
    "`nncomp[x]` anywhere in the README, the notebooks or the package names an extra of settings.ini."
    files = [ROOT/'README.md', ROOT/'Makefile', *notebooks(), *ROOT.glob('nncomp/**/*.py')]
    named = {(m, f.relative_to(ROOT).as_posix()) for f in files for m in re.findall(r'nncomp\[(\w+)\]', f.read_text())}
    unknown = sorted((m, f) for m, f in named if m not in extras())
    assert not unknown, f'extras named but not declared in settings.ini: {unknown}'
    assert 'core' not in extras() and {'study', 'docs', 'dev'} <= extras()

def test_notebooks_name_the_venv_kernel():
    "Every notebook opens in the kernel `make setup` registers, whose display name the README gives."
    assert '--name nncomp --display-name "Python (nncomp)"' in (ROOT/'Makefile').read_text()
    assert 'kernel "Python (nncomp)"' in (ROOT/'README.md').read_text()
    other = sorted(f.relative_to(ROOT).as_posix() for f in notebooks()
                   if json.loads(f.read_text())['metadata'].get('kernelspec', {}).get('name') != 'nncomp')
    assert not other, f'notebooks whose kernelspec is not nncomp: {other}'
