"""The docs site: the Chromium check catches what it must (on deliberately broken pages), and a small site built the way
the real one is (nbdev processing with every cell run -> MkDocs Material + MathJax) renders its maths and outputs, links,
loads its images and searches offline. The whole site of this repository is built and checked too (every notebook is
run: several minutes, as `make docs`), unless NNCOMP_DOCS_FULL=0."""
import json, os, re, shutil
from pathlib import Path

import pytest

from nncomp.tools import docs

ROOT = Path(__file__).resolve().parents[1]
needs_chromium = pytest.mark.skipif(docs.find_chromium() is None,
                                    reason='no chromium on PATH (Debian: apt-get install -y chromium; `make test` does it as root)')
needs_site_tools = pytest.mark.skipif(not all(map(docs.find_spec, ('mkdocs_jupyter', 'jupyter_server_mathjax'))),
                                      reason='mkdocs-jupyter or jupyter-server-mathjax is not installed (dev requirements)')
TEXT = '<p>' + 'Some text that a reader would read. ' * 5 + '</p>'


def _page(title, body=''):
    return f'<!doctype html><html><head><title>{title}</title></head><body><article><h1>{title}</h1>{body}</article></body></html>'


def _cell(tags, code, output=''):
    "A notebook cell as mkdocs-jupyter writes it (tags become `celltag_` classes)."
    out = f'<div class="jp-OutputArea"><div class="jp-OutputArea-output"><pre>{output}</pre></div></div>' if output else ''
    return (f'<div class="jp-Cell jp-CodeCell {" ".join("celltag_" + t for t in tags)}">'
            f'<div class="jp-InputArea"><pre>{code}</pre></div>{out}</div>')


@needs_chromium
def test_check_catches_broken_pages(tmp_path):
    "Each fault on its own page, next to a page that is fine: the check names every fault and nothing else."
    site = tmp_path / 'site'
    site.mkdir()
    (site / 'pixel.svg').write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>')
    wide = '<table><tr>' + '<td>a_long_table_cell</td>' * 80 + '</tr></table>'
    pages = {
        'index.html': _page('Home', TEXT + '<a href="ok.html">ok</a> <a href="gone.html">gone</a> <img src="pixel.svg"> '
                                          '<img src="missing.png"> <a href="https://example.org">x</a>'),
        'ok.html': _page('Fine', TEXT + '<a href="index.html#top">home</a> <code>$HOME and $PATH</code> costs $5 and $10 '
                         + _cell(['nncomp-expect-output'], 'x + 1', '21') + _cell(['nncomp-not-run'], 'train()')
                         + f'<div style="overflow-x: auto">{wide}</div>'),
        'empty.html': '<!doctype html><html><head></head><body></body></html>',
        'maths.html': _page('Maths', TEXT + r'<p>The loss is $\ell = -\log p_y$ and $$\sum_k p_k = 1.$$</p>'),
        'outputs.html': _page('Outputs', TEXT + _cell(['nncomp-expect-output'], 'x + 1') + _cell(['nncomp-error'], 'boom()', 'ValueError')),
        'wide.html': _page('Wide', TEXT + f'<div style="overflow: hidden">{wide}</div>'),
        'grows.html': _page('Grows', TEXT + '<div style="overflow: hidden"><div style="overflow-x: auto; width: max-content">'
                                            f'{wide}</div></div>'),
        'net.html': _page('Net', TEXT + '<script>fetch("https://api.github.com/repos/nncomp/nncomp").catch(() => 0);'
                          'const x = new XMLHttpRequest(); x.open("GET", "http://example.org/x.json");'
                          'x.onerror = () => 0; x.send(); fetch("pixel.svg")</script>'),
    }
    for name, html in pages.items(): (site / name).write_text(html)
    problems = docs.check(site, shots=tmp_path / 'shots')
    assert sorted(problems) == sorted([
        'index.html: image did not load: missing.png', 'index.html: broken link: gone.html',
        'empty.html: does not render (text 0 chars, 0 h1)',
        r'maths.html: raw LaTeX (MathJax did not typeset it): $\ell = -\log p_y$',
        r'maths.html: raw LaTeX (MathJax did not typeset it): $$\sum_k p_k = 1.$$',
        'outputs.html: cell shows no output: x + 1', 'outputs.html: cell raised while the docs were built: boom()',
        'wide.html: cut off at the right edge (no scroll bar): table ?',
        'grows.html: cut off at the right edge (no scroll bar): table ?',   # its scrolling box is as wide as the table
        'net.html: request leaves file:// (the site must work offline): https://api.github.com/repos/nncomp/nncomp',
        'net.html: request leaves file:// (the site must work offline): http://example.org/x.json']), problems
    assert {p.name for p in (tmp_path / 'shots').glob('*.png')} == {f'{n}.png' for n in pages}


def _notebook(cells):
    return {'cells': [{'cell_type': t, 'metadata': {}, 'source': s, **({'outputs': [], 'execution_count': None} if t == 'code' else {})}
                      for t, s in cells],
            'metadata': {'kernelspec': {'name': 'python3', 'language': 'python', 'display_name': 'python3'}}, 'nbformat': 4, 'nbformat_minor': 5}


def _mini_repo(tmp_path):
    "A repository with this one's settings and Quarto files, a small index, a demo notebook and a preset's results."
    repo = tmp_path / 'repo'
    (repo / 'nbs').mkdir(parents=True)
    shutil.copy(ROOT / 'settings.ini', repo / 'settings.ini')
    for f in ('_quarto.yml', 'nbdev.yml', 'styles.css'):
        if (ROOT / 'nbs' / f).exists(): shutil.copy(ROOT / 'nbs' / f, repo / 'nbs' / f)
    (repo / 'nncomp').symlink_to(ROOT / 'nncomp')
    (repo / 'nbs/index.ipynb').write_text(json.dumps(_notebook([
        ('markdown', '# nncomp\n\n> Test index.'),
        ('markdown', 'The headline figure:\n\n[![accuracy](../results/quick/accuracy_vs_params.png)](../results/quick/accuracy_vs_params.png)\n\n'
                     'API: [the demo](demo.html) and [the report](../results/quick/report.ipynb); '
                     '[claims.txt](../results/quick/claims.txt), [the ConvNet sweep](../results/quick/convnet.ipynb).'),
        ('markdown', '| ' + ' | '.join(f'a_long_markdown_column_{i}' for i in range(20)) + ' |\n|' + '---|' * 20 + '\n|'
                     + ' 1.2345 |' * 20)])))
    (repo / 'nbs/00_demo.ipynb').write_text(json.dumps(_notebook([
        ('markdown', '# Demo\n\n> A page with maths, outputs, a plot, a wide table and API docs.'),
        ('code', '#| hide\nfrom nbdev.showdoc import show_doc\nimport matplotlib.pyplot as plt, pandas as pd\nfrom nncomp.tools.docs import build'),
        ('markdown', r'Inline $\ell = -\log p_y$ and displayed $$\frac{\partial^2 \ell}{\partial z^2} = \mathrm{diag}(p) - pp^\top.$$'),
        ('code', 'show_doc(build)'),
        ('code', '6 * 7'),
        ('code', 'fig, ax = plt.subplots(figsize=(3, 2)); ax.plot([1, 2], [1, 3]);'),
        ('code', 'pd.DataFrame([[56.216667] * 40], columns=[f"a_long_column_{i}" for i in range(40)])'),
        ('code', '#| notest\nraise RuntimeError("a notest cell must not run")')])))
    results = repo / 'results/quick'
    results.mkdir(parents=True)
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(3, 2)); ax.plot([1, 2], [1, 2]); fig.savefig(results / 'accuracy_vs_params.png'); plt.close(fig)
    report = _notebook([('markdown', '# Study report\n\n' + 'SYNTHETIC test page. ' * 10), ('code', 'print(folder)')])
    report['cells'][1]['outputs'] = [{'output_type': 'stream', 'name': 'stdout', 'text': ['/home/someone/nncomp/results/quick: 3 runs\n']}]
    (results / 'report.ipynb').write_text(json.dumps(report))
    sweep = _notebook([('markdown', '# ConvNet sweep\n\nSee [the report](report.ipynb) and [the claims](claims.txt). '
                                    + 'SYNTHETIC test page. ' * 5)])
    (results / 'convnet.ipynb').write_text(json.dumps(sweep))
    (results / 'claims.txt').write_text('claim (a): supported\n')
    return repo


@needs_chromium
@needs_site_tools
def test_small_site_builds_renders_and_links(tmp_path, capfd):
    repo = _mini_repo(tmp_path)
    site = docs.build(repo, tmp_path / 'site')
    assert 'not every cell ran' not in capfd.readouterr().err
    assert {'index.html', 'demo.html', 'report-quick.html'} <= {p.name for p in site.glob('*.html')}
    assert (site / 'results/quick/accuracy_vs_params.png').exists() and (site / 'assets/mathjax/MathJax.js').exists()
    page = (site / 'demo.html').read_text()
    assert 'show_doc</span>' not in page and 'id="build"' in page     # API docs shown, their input hidden
    assert '>42<' in page and 'image/png' in page and '<td>56.2167</td>' in page   # outputs; floats with 4 decimals
    assert 'a notest cell must not run' in page and 'not-run' in page and 'RuntimeError:' not in page
    assert not re.search(r'<(script|link)[^>]+(src|href)="https?:', page) and 'MathJax.js?config=' in page   # nothing from a CDN
    report = (site / 'report-quick.html').read_text()
    assert 'results/quick: 3 runs' in report and '/home/someone' not in report
    assert (site / 'convnet-quick.html').exists() and (site / 'results/quick/claims.txt').exists()   # index links
    assert 'href="report-quick.html"' in (site / 'convnet-quick.html').read_text()
    assert 'repo_url' not in (repo / '_proc/_mkdocs/mkdocs.yml').read_text()   # Material would ask api.github.com
    assert not list((repo / 'nbs').rglob('results'))                         # running the notebooks wrote no results/
    assert docs.check(site, shots=tmp_path / 'shots') == []   # links work, tables scroll, no request leaves file://
    assert (tmp_path / 'shots/index.html.png').stat().st_size > 10_000


@needs_chromium
@needs_site_tools
def test_check_fails_on_a_site_built_without_running_the_notebooks(tmp_path):
    "Pages whose cells were not run lack the outputs their code should show: the check names each such cell."
    site = docs.build(_mini_repo(tmp_path), tmp_path / 'site', execute=False)
    problems = docs.check(site, shots=tmp_path / 'shots')
    assert len(problems) == 4 and all(p.startswith('demo.html: cell shows no output: ') for p in problems), problems
    assert any('6 * 7' in p for p in problems) and any('pd.DataFrame' in p for p in problems)


@needs_chromium
@needs_site_tools
@pytest.mark.skipif(os.environ.get('NNCOMP_DOCS_FULL') == '0', reason='NNCOMP_DOCS_FULL=0: the whole site is not built')
def test_whole_site(tmp_path, capfd):
    "Every page of the real site (every notebook run, the committed quick report) renders, links and loads its images."
    site = docs.build(ROOT, tmp_path / 'site')
    assert 'not every cell ran' not in capfd.readouterr().err   # every notebook's cells ran
    assert docs.check(site, shots=tmp_path / 'shots') == []
