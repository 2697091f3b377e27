"""Installing nncomp from a built wheel: the study notebooks travel with it and `nncomp_study` runs from it.

The wheel is built offline (`--no-build-isolation --no-deps`) from a copy of the sources, and installed with `--no-deps`
into a fresh virtual environment whose only other packages are this venv's (a .pth line), so nothing is downloaded and
torch is not installed twice. `nncomp` itself then comes from the wheel, never from this checkout."""
import os, re, shutil, subprocess, sys, sysconfig, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ['setup.py', 'settings.ini', 'pyproject.toml', 'MANIFEST.in', 'README.md', 'LICENSE', 'nncomp', 'nbs/study']

def run(*cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)

@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    "A wheel freshly built from a copy of the sources; its path."
    tmp = tmp_path_factory.mktemp('wheel')
    src = tmp/'src'
    for s in SOURCES:   # a copy: building in the checkout would write build/ and *.egg-info/ there
        if not (ROOT/s).exists(): continue
        (src/s).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT/s).is_dir(): shutil.copytree(ROOT/s, src/s, ignore=shutil.ignore_patterns('__pycache__'))
        else: shutil.copy(ROOT/s, src/s)
    r = run(sys.executable, '-m', 'pip', 'wheel', src, '--no-deps', '--no-build-isolation', '-q', '-w', tmp/'dist', cwd=src)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = (tmp/'dist').glob('nncomp-*.whl')
    return wheel

@pytest.fixture(scope='module')
def installed(wheel):
    "A venv with nncomp installed from the wheel; yields its bin folder."
    venv = wheel.parent.parent/'venv'
    r = run(sys.executable, '-m', 'venv', '--without-pip', venv)
    assert r.returncode == 0, r.stderr
    purelib = Path(run(venv/'bin'/'python', '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])').stdout.strip())
    (purelib/'_deps_from_dev_venv.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')   # torch & co., no nncomp
    r = run(sys.executable, '-m', 'pip', '--python', venv/'bin'/'python', 'install', '--no-deps', '--no-index', '-q', wheel)
    assert r.returncode == 0, r.stderr[-3000:]
    return venv/'bin'

def test_wheel_ships_the_study_notebooks(installed, tmp_path):
    code = 'import nncomp, nncomp.runs.study as s; print(nncomp.__file__); print(s.study_folder()); print(sorted(p.name for p in s.study_folder().glob("*.ipynb")))'
    r = run(installed/'python', '-c', code, cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != 'PYTHONPATH'})
    assert r.returncode == 0, r.stderr
    module, folder, names = r.stdout.splitlines()
    assert str(installed.parent) in module and str(ROOT) not in module, module   # the wheel's nncomp, not this checkout's
    assert folder.endswith('nncomp/study_notebooks') and all(n in names for n in ('pruning.ipynb', 'hashednet.ipynb', 'convnet.ipynb'))

def requires(wheel:Path) -> dict:
    "{extra ('' for the bare install): {distribution}} from the wheel's METADATA."
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))).decode()
    out = {}
    for line in meta.splitlines():
        if not line.startswith('Requires-Dist:'): continue
        req = line.split(':', 1)[1].strip(); extra = re.search(r'extra == "(\w+)"', req)
        out.setdefault(extra.group(1) if extra else '', set()).add(re.match(r'[A-Za-z0-9_.-]+', req).group(0).lower())
    return out

def test_bare_install_pulls_no_plotting_or_statistics(wheel):
    "matplotlib and scipy (the report's) come with the study extra, not with `pip install nncomp`."
    r = requires(wheel)
    assert not r[''] & {'matplotlib', 'scipy', 'seaborn', 'papermill', 'dask'}, r['']
    assert {'matplotlib', 'scipy', 'papermill'} <= r['study'] and 'core' not in r

def test_wheel_library_imports_without_the_study_extra(installed, tmp_path):
    "The installed library imports with the study extra's modules unimportable; nncomp_study says which extra it needs."
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    gone = ('matplotlib', 'scipy', 'seaborn', 'papermill', 'nbformat', 'distributed')
    block = f'import sys\nfor m in {gone!r}: sys.modules[m] = None\n'
    code = 'import nncomp.compress.posttrain, nncomp.engine.train; print(nncomp.__file__)'
    r = run(installed/'python', '-c', block + code, cwd=tmp_path, env=env)
    assert r.returncode == 0 and str(installed.parent) in r.stdout, r.stderr[-3000:]
    r = run(installed/'python', '-c', block + 'from nncomp.runs.study import main; main(["--preset", "smoke"])',
            cwd=tmp_path, env=env)
    assert r.returncode == 1 and r.stderr.strip().endswith('pip install "nncomp[study]"'), r.stderr[-3000:]

def test_nncomp_study_help_from_the_wheel(installed, tmp_path):
    r = run(installed/'nncomp_study', '--help', cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != 'PYTHONPATH'})
    assert r.returncode == 0, r.stderr
    assert 'usage: nncomp_study' in r.stdout and '--preset' in r.stdout
    scheduler = re.search(r'^ +--scheduler .*?(?=^ +--sweeps)', r.stdout, re.M | re.S).group(0)   # the option's help
    assert "'inline'" in scheduler, scheduler

@pytest.mark.skipif(not os.environ.get('NNCOMP_DATA'), reason='needs the real MNIST files: set NNCOMP_DATA (CI sets it)')
def test_smoke_sweep_from_the_wheel(installed, tmp_path):
    "The smoke preset's HashedNet sweep, run by the installed console script through papermill (a kernel of the new venv)."
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'JUPYTER_PATH')}
    env['PATH'] = f"{installed}{os.pathsep}{env.get('PATH', '')}"
    r = run(installed/'nncomp_study', '--preset', 'smoke', '--sweeps', 'hashednet', '--no-report', '--no-progress',
            '--results', tmp_path/'res', cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert '2 runs (0 failed)' in r.stdout and (tmp_path/'res'/'runs.parquet').exists()
