"""The docs site: the Chromium check catches what it must, and a small site built the way the real one is
(nbdev processing -> MkDocs Material) renders, links and loads its images. The whole site of this repository is built and
checked too (about two minutes, as `make docs`), unless NNCOMP_DOCS_FULL=0."""
import json, os, shutil
from pathlib import Path

import pytest

from nncomp import docs

ROOT = Path(__file__).resolve().parents[1]
needs_chromium = pytest.mark.skipif(docs.find_chromium() is None,
                                    reason='no chromium on PATH (Debian: apt-get install -y chromium; `make test` does it as root)')


def _page(title, body=''):
    return f'<!doctype html><html><head><title>{title}</title></head><body><article><h1>{title}</h1>{body}</article></body></html>'


@needs_chromium
def test_check_catches_broken_links_missing_images_and_empty_pages(tmp_path):
    site = tmp_path / 'site'
    site.mkdir()
    (site / 'pixel.svg').write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>')
    text = '<p>' + 'Some text that a reader would read. ' * 5 + '</p>'
    (site / 'index.html').write_text(_page('Home', text + '<a href="ok.html">ok</a> <a href="gone.html">gone</a> '
                                                  '<img src="pixel.svg"> <img src="missing.png"> <a href="https://example.org">x</a>'))
    (site / 'ok.html').write_text(_page('Fine', text + '<a href="index.html#top">home</a>'))
    (site / 'empty.html').write_text('<!doctype html><html><head></head><body></body></html>')
    problems = docs.check(site, shots=tmp_path / 'shots')
    assert sorted(problems) == sorted(['index.html: image did not load: missing.png', 'index.html: broken link: gone.html',
                                       'empty.html: does not render (text 0 chars, 0 h1)']), problems
    assert {p.name for p in (tmp_path / 'shots').glob('*.png')} == {'index.html.png', 'ok.html.png', 'empty.html.png'}


def _mini_repo(tmp_path):
    "A repository with this one's settings and Quarto files, the docs notebook, a small index and a preset's results."
    repo = tmp_path / 'repo'
    (repo / 'nbs').mkdir(parents=True)
    shutil.copy(ROOT / 'settings.ini', repo / 'settings.ini')
    for f in ('_quarto.yml', 'nbdev.yml', 'styles.css'):
        if (ROOT / 'nbs' / f).exists(): shutil.copy(ROOT / 'nbs' / f, repo / 'nbs' / f)
    shutil.copy(ROOT / 'nbs/14_docs.ipynb', repo / 'nbs/14_docs.ipynb')
    (repo / 'nncomp').symlink_to(ROOT / 'nncomp')
    cells = [{'cell_type': 'markdown', 'metadata': {}, 'source': '# nncomp\n\n> Test index.'},
             {'cell_type': 'markdown', 'metadata': {}, 'source': 'The headline figure:\n\n![accuracy](../results/quick/accuracy_vs_params.png)\n\n'
                                                                  'API: [the docs module](docs.html) and [the report](../results/quick/report.ipynb).'}]
    (repo / 'nbs/index.ipynb').write_text(json.dumps({'cells': cells, 'metadata': {'kernelspec': {'name': 'python3', 'language': 'python', 'display_name': 'python3'}}, 'nbformat': 4, 'nbformat_minor': 5}))
    results = repo / 'results/quick'
    results.mkdir(parents=True)
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(3, 2)); ax.plot([1, 2], [1, 2]); fig.savefig(results / 'accuracy_vs_params.png'); plt.close(fig)
    report = {'cells': [{'cell_type': 'markdown', 'metadata': {}, 'source': '# Study report\n\n' + 'SYNTHETIC test page. ' * 10}],
              'metadata': {'kernelspec': {'name': 'python3', 'language': 'python', 'display_name': 'python3'}}, 'nbformat': 4, 'nbformat_minor': 5}
    (results / 'report.ipynb').write_text(json.dumps(report))
    return repo


@needs_chromium
def test_small_site_builds_renders_and_links(tmp_path):
    pytest.importorskip('mkdocs_jupyter', reason='mkdocs-jupyter is not installed (dev requirement)')
    repo = _mini_repo(tmp_path)
    site = docs.build(repo, tmp_path / 'site')
    assert {'index.html', 'docs.html', 'report-quick.html'} <= {p.name for p in site.glob('*.html')}
    assert (site / 'results/quick/accuracy_vs_params.png').exists()
    page = (site / 'docs.html').read_text()
    assert 'show_doc</span>' not in page and 'id="build"' in page     # API docs shown, their `#| echo: false` input hidden
    assert docs.check(site, shots=tmp_path / 'shots') == []
    assert (tmp_path / 'shots/index.html.png').stat().st_size > 10_000


@needs_chromium
@pytest.mark.skipif(os.environ.get('NNCOMP_DOCS_FULL') == '0', reason='NNCOMP_DOCS_FULL=0: the whole site is not built')
def test_whole_site(tmp_path, capfd):
    "Every page of the real site (every notebook, the committed quick report) renders, links and loads its images."
    pytest.importorskip('mkdocs_jupyter', reason='mkdocs-jupyter is not installed (dev requirement)')
    site = docs.build(ROOT, tmp_path / 'site')
    assert 'API docs not executed' not in capfd.readouterr().err   # every notebook's API docs were processed
    assert docs.check(site, shots=tmp_path / 'shots') == []
