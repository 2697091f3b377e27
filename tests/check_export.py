"""Fail when nncomp/ is out of step with nbs/ (the package must be what nbdev_export makes of the notebooks)."""
import filecmp, shutil, subprocess, sys, tempfile
from pathlib import Path

root = Path(__file__).resolve().parents[1]
with tempfile.TemporaryDirectory() as tmp:
    copy = Path(tmp) / 'repo'
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns('.venv', '.git', 'results', '_docs', '_proc', '__pycache__'))
    subprocess.run([sys.executable, '-c', 'from nbdev.doclinks import nbdev_export; nbdev_export()'], cwd=copy, check=True)
    def stale_in(cmp, rel=''):   # the package has subfolders: compare them too
        here = [f'{rel}{f}' for f in cmp.diff_files + cmp.left_only + cmp.right_only]
        return here + [f for d, sub in cmp.subdirs.items() for f in stale_in(sub, f'{rel}{d}/')]
    stale = stale_in(filecmp.dircmp(root / 'nncomp', copy / 'nncomp', ignore=['__pycache__']))
    if stale:
        sys.exit(f'nncomp/ is out of step with nbs/ for {stale}: run `make export` and commit nncomp/.')
print('nncomp/ matches nbs/')
