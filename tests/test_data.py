"""Tests of the data layer: nncomp.data.mnist, nncomp.data.variants, nncomp.data.datasets."""
import functools, gzip, http.server, json, math, os, threading, warnings
from pathlib import Path
import numpy as np
import pytest
import torch

from nncomp.data import mnist, variants
from nncomp.data.mnist import FILES, SHA256, load_raw, locate, make_idx, read_bytes, sha256
from nncomp.data.variants import (BACKGROUND_IMAGES, MIN_PATCH_VARIANCE, VARIANTS, background_images, cache_paths,
                             cut_patches, load_variant, patch_variance, read_amat, variant_params)
from nncomp.data.datasets import DATASETS, SPLITS, DataBundle, Split, load_dataset, main, split_indices, subsample

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


# ---------------------------------------------------------------- helpers and fixtures

def tiny_arrays(seed=0):
    "Small arrays in the shape of the four files (5 training, 3 test examples)."
    rng = np.random.default_rng(seed)
    return {'train_images': rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), 'train_labels': np.arange(5, dtype=np.uint8),
            'test_images': rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), 'test_labels': np.arange(3, dtype=np.uint8)}

def tiny_checksums(arrays):
    return {FILES[k]: sha256(make_idx(a)) for k, a in arrays.items()}

def write_files(folder, arrays, compress=True):
    folder = Path(folder); folder.mkdir(parents=True, exist_ok=True)
    for k, a in arrays.items():
        data = make_idx(a)
        if compress: (folder / f'{FILES[k]}.gz').write_bytes(gzip.compress(data))
        else: (folder / FILES[k]).write_bytes(data)

@pytest.fixture
def isolated(tmp_path, monkeypatch):
    "No $NNCOMP_DATA, an empty cache: only what a test puts under tmp_path is found."
    monkeypatch.delenv('NNCOMP_DATA', raising=False)
    monkeypatch.setenv('NNCOMP_CACHE', str(tmp_path / 'cache'))
    return tmp_path

@pytest.fixture
def server(tmp_path):
    "An HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."
    www = tmp_path / 'www'; www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}/', www
    httpd.shutdown(); httpd.server_close()

@pytest.fixture(scope='session')
def pool(data_root):
    "MNIST's 70,000 images (train then test) and labels."
    raw = load_raw('mnist', data_root)
    return (np.concatenate([raw['train_images'], raw['test_images']]),
            np.concatenate([raw['train_labels'], raw['test_labels']]))

@pytest.fixture(scope='session')
def generated(pool, nncomp_cache):
    "Each variant of the 70,000 images with seed 0, generated once per session (in the session cache)."
    return functools.lru_cache(None)(lambda name: load_variant(name, pool[0], seed=0))

def no_temp_files(folder):
    return not [p for p in Path(folder).rglob('*') if '.tmp-' in p.name]


# ---------------------------------------------------------------- real files

@pytest.mark.parametrize('dataset', ['mnist', 'fashion-mnist'])
def test_real_files_checksums_and_shapes(data_root, dataset):
    for key, fname in FILES.items():
        path = locate(dataset, fname, data_root, download=False)
        assert sha256(read_bytes(path)) == SHA256[dataset][fname]
    raw = load_raw(dataset, data_root, download=False)
    assert raw['train_images'].shape == (60000, 28, 28) and raw['test_images'].shape == (10000, 28, 28)
    assert raw['train_labels'].shape == (60000,) and raw['test_labels'].shape == (10000,)
    assert raw['train_images'].dtype == np.uint8 and raw['train_labels'].max() == 9

def test_mnist_training_label_counts(data_root):
    assert np.bincount(load_raw('mnist', data_root)['train_labels']).tolist() == MNIST_TRAIN_COUNTS

def test_real_files_found_through_env(data_root, monkeypatch):
    monkeypatch.setenv('NNCOMP_DATA', str(data_root))
    assert locate('mnist', FILES['test_labels'], download=False).parent == data_root / 'mnist'


# ---------------------------------------------------------------- IDX reading, lookup, errors

@pytest.mark.parametrize('compress', [True, False])
@pytest.mark.parametrize('nested', [True, False])
def test_idx_files_raw_or_gz_nested_or_flat(isolated, compress, nested):
    arrays = tiny_arrays()
    write_files(isolated / 'root' / ('mnist' if nested else ''), arrays, compress)
    got = load_raw('mnist', isolated / 'root', download=False, checksums=tiny_checksums(arrays))
    for k in FILES: np.testing.assert_array_equal(got[k], arrays[k])

def test_lookup_order_root_then_env_then_cache(isolated, monkeypatch):
    f = FILES['train_labels']
    for place in ('root', 'env', 'cache'): write_files(isolated / place / 'mnist', tiny_arrays())
    monkeypatch.setenv('NNCOMP_DATA', str(isolated / 'env'))
    assert locate('mnist', f, isolated / 'root', download=False).parent == isolated / 'root' / 'mnist'
    assert locate('mnist', f, None, download=False).parent == isolated / 'env' / 'mnist'
    monkeypatch.delenv('NNCOMP_DATA')
    assert locate('mnist', f, None, download=False).parent == isolated / 'cache' / 'mnist'

def test_missing_files_error_names_every_place(isolated, monkeypatch):
    monkeypatch.setenv('NNCOMP_DATA', str(isolated / 'env'))
    with pytest.raises(FileNotFoundError) as e:
        load_raw('fashion-mnist', isolated / 'root', download=False)
    msg = str(e.value)
    for d in ('root/fashion-mnist', 'root', 'env/fashion-mnist', 'env', 'cache/fashion-mnist', 'cache'):
        assert f'{isolated / d}/train-images-idx3-ubyte[.gz]' in msg
    assert 'NNCOMP_DATA' in msg and 'download' in msg and mnist.MIRRORS['fashion-mnist'][0] in msg

def test_checksum_mismatch_error(isolated):
    arrays = tiny_arrays()
    write_files(isolated / 'root', arrays)
    table = tiny_checksums(arrays)
    bad = dict(table, **{FILES['test_labels']: 'ab' * 32})
    with pytest.raises(ValueError) as e:
        load_raw('mnist', isolated / 'root', download=False, checksums=bad)
    msg = str(e.value)
    assert str(isolated / 'root' / 't10k-labels-idx1-ubyte.gz') in msg
    assert 'ab' * 32 in msg and table[FILES['test_labels']] in msg
    with pytest.raises(ValueError, match='checksum mismatch'):  # the real table rejects the tiny files
        load_raw('mnist', isolated / 'root', download=False)

def test_unknown_dataset_error():
    with pytest.raises(ValueError, match="dataset='emnist' is not allowed; allowed: mnist, fashion-mnist"):
        load_raw('emnist')
    with pytest.raises(ValueError, match="variant='mnist-rotated' is not allowed; allowed: mnist-rot, mnist-back-rand, mnist-back-image"):
        load_variant('mnist-rotated', np.zeros((1, 28, 28), np.uint8))

@pytest.mark.parametrize('damage', ['truncated', 'corrupted'])
def test_damaged_gz_names_its_path(isolated, damage):
    "A truncated or corrupted .gz is an error naming the file (not a bare EOFError / BadGzipFile)."
    arrays = tiny_arrays()
    write_files(isolated / 'root', arrays)
    path = isolated / 'root' / f"{FILES['train_images']}.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) // 2] if damage == 'truncated' else raw[:10] + bytes(len(raw) - 18) + raw[-8:])
    with pytest.raises(ValueError, match=f'corrupt gzip file {path}'):
        load_raw('mnist', isolated / 'root', download=False, checksums=tiny_checksums(arrays))

def test_bad_idx_header():
    with pytest.raises(ValueError, match='not a uint8 IDX file'):
        mnist.parse_idx(b'\x00\x00\x0b\x01\x00\x00\x00\x01\x00\x00')


# ---------------------------------------------------------------- download through a loopback server

def test_download_from_mirrors(isolated, server, capsys):
    base, www = server
    arrays = tiny_arrays()
    write_files(www / 'good', arrays)
    mirrors = [base + 'missing/', base + 'good/']  # the first mirror answers 404 for everything
    got = load_raw('mnist', mirrors=mirrors, checksums=tiny_checksums(arrays))
    for k in FILES: np.testing.assert_array_equal(got[k], arrays[k])
    out = capsys.readouterr().out
    assert f'downloading {base}good/train-images-idx3-ubyte.gz' in out and 'sha256 verified' in out
    cache = isolated / 'cache' / 'mnist'
    assert sorted(p.name for p in cache.iterdir()) == sorted(f'{f}.gz' for f in FILES.values())
    # found in the cache the second time: no download
    load_raw('mnist', mirrors=[], checksums=tiny_checksums(arrays))
    assert 'downloading' not in capsys.readouterr().out

def test_download_with_wrong_checksum_keeps_nothing(isolated, server):
    base, www = server
    write_files(www, tiny_arrays(1))
    with pytest.raises(FileNotFoundError) as e:
        load_raw('mnist', mirrors=[base], checksums=tiny_checksums(tiny_arrays(0)))
    msg = str(e.value)
    assert 'checksum mismatch' in msg and f'{base}train-images-idx3-ubyte.gz' in msg
    assert sha256(make_idx(tiny_arrays(1)['train_images'])) in msg  # actual
    assert sha256(make_idx(tiny_arrays(0)['train_images'])) in msg  # expected
    cache = isolated / 'cache'
    assert not cache.exists() or not list(cache.rglob('*.gz'))
    assert no_temp_files(isolated)

def test_download_unreachable_mirror_error(isolated, server):
    base, www = server
    with pytest.raises(FileNotFoundError) as e:
        load_raw('mnist', mirrors=[base + 'nothing/'])
    assert 'NNCOMP_DATA' in str(e.value) and '404' in str(e.value)

def test_default_mirrors_are_canonical():
    assert mnist.MIRRORS['mnist'] == ('https://ossci-datasets.s3.amazonaws.com/mnist/', 'https://storage.googleapis.com/cvdf-datasets/mnist/')
    assert mnist.MIRRORS['fashion-mnist'] == ('http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',)


# ---------------------------------------------------------------- variants: defining properties on the real images

def test_rot_angles_recorded_and_uniform(pool, generated):
    v = generated('mnist-rot')
    a = v['angles']
    assert a.shape == (70000,) and a.dtype == np.float64 and a.min() >= 0 and a.max() < 2 * math.pi
    u = np.sort(a) / (2 * math.pi)  # Kolmogorov-Smirnov distance to U[0, 1): 1.95/sqrt(n) is its 0.1 % level
    ks = max((np.arange(1, len(u) + 1) / len(u) - u).max(), (u - np.arange(len(u)) / len(u)).max())
    assert ks < 1.95 / math.sqrt(len(u))
    i = np.arange(0, 70000, 7000)  # the stored images are the recorded rotations of the originals
    again = variants.rotate(torch.from_numpy(pool[0][i]), torch.from_numpy(a[i])).numpy()
    np.testing.assert_array_equal(again, v['images'][i])
    # the digit is still there: rotation moves ink but keeps (most of) it
    ink_before, ink_after = pool[0].sum((1, 2)).astype(float), v['images'].sum((1, 2)).astype(float)
    assert np.median(ink_after / ink_before) > 0.9

def test_back_rand_background_is_uniform(pool, generated):
    img = generated('mnist-back-rand')['images']
    digit = pool[0]
    assert (img >= digit).all() and (img[digit == 255] == 255).all()
    p = np.bincount(img[digit == 0], minlength=256) / (digit == 0).sum()  # distribution of background grey levels
    levels = np.arange(256) / 255
    mean = (p * levels).sum(); var = (p * (levels - mean) ** 2).sum()
    assert abs(mean - 0.5) < 2e-3 and abs(var - 1 / 12) < 2e-3
    assert np.abs(p.reshape(8, 32).sum(1) - 1 / 8).max() < 3e-3  # flat histogram in 8 bins

def test_back_image_patches_textured_and_max(pool, generated):
    v = generated('mnist-back-image')
    which, origin = v['patch_source'].astype(np.int64), v['patch_origin'].astype(np.int64)
    sources = background_images()
    assert len(sources) == len(BACKGROUND_IMAGES)
    patches = cut_patches(sources, which, origin)
    assert patch_variance(patches).min() >= MIN_PATCH_VARIANCE
    np.testing.assert_array_equal(v['images'], np.maximum(pool[0], patches))
    assert (v['images'] >= pool[0]).all()
    share = np.bincount(which, minlength=len(sources)) / len(which)  # image chosen uniformly
    assert np.abs(share - 1 / len(sources)).max() < 0.01
    assert len(np.unique(origin[:, 0] * 10_000 + origin[:, 1])) > 10_000  # positions vary

@pytest.mark.parametrize('name', VARIANTS)
def test_variant_same_seed_same_bytes_other_seed_differs(name):
    digits = np.zeros((1000, 28, 28), np.uint8); digits[:, 5:23, 11:17] = np.arange(1, 1001).reshape(-1, 1, 1) % 256
    a = load_variant(name, digits, seed=5, cache=False)
    b = load_variant(name, digits, seed=5, cache=False)
    c = load_variant(name, digits, seed=6, cache=False)
    for k in a: assert a[k].tobytes() == b[k].tobytes()
    assert a['images'].tobytes() != c['images'].tobytes()


# ---------------------------------------------------------------- variant cache

def test_variant_cache_written_atomically_and_reused(tmp_path, capsys):
    digits = np.zeros((200, 28, 28), np.uint8); digits[:, 6:22, 12:16] = 255
    first = load_variant('mnist-back-rand', digits, seed=2, folder=tmp_path)
    assert 'generated mnist-back-rand' in capsys.readouterr().out
    npz, side = cache_paths(variant_params('mnist-back-rand', 2, digits), tmp_path)
    meta = json.loads(side.read_text())
    assert meta['params']['seed'] == 2 and meta['arrays']['images']['sha256'] == sha256(first['images'].tobytes())
    assert no_temp_files(tmp_path)
    again = load_variant('mnist-back-rand', digits, seed=2, folder=tmp_path)
    assert capsys.readouterr().out == ''  # read from the cache
    np.testing.assert_array_equal(again['images'], first['images'])
    other = cache_paths(variant_params('mnist-back-rand', 3, digits), tmp_path)[0]
    assert other != npz  # another seed gets its own file

@pytest.mark.parametrize('damage', ['truncate', 'replace_array', 'bad_json', 'missing_npz'])
def test_corrupt_variant_cache_is_detected_and_regenerated(tmp_path, damage):
    digits = np.zeros((100, 28, 28), np.uint8); digits[:, 6:22, 12:16] = 200
    first = load_variant('mnist-rot', digits, seed=4, folder=tmp_path)
    npz, side = cache_paths(variant_params('mnist-rot', 4, digits), tmp_path)
    if damage == 'truncate': npz.write_bytes(npz.read_bytes()[:len(npz.read_bytes()) // 2])
    if damage == 'replace_array': np.savez_compressed(npz, images=first['images'] // 2, angles=first['angles'])
    if damage == 'bad_json': side.write_text('{"params": ')
    if damage == 'missing_npz': npz.unlink()
    with pytest.warns(UserWarning, match='regenerating'):
        again = load_variant('mnist-rot', digits, seed=4, folder=tmp_path)
    np.testing.assert_array_equal(again['images'], first['images'])
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # repaired: the next load is clean
        np.testing.assert_array_equal(load_variant('mnist-rot', digits, seed=4, folder=tmp_path)['angles'], first['angles'])


# ---------------------------------------------------------------- .amat reader

def test_read_amat(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.random((7, 784)), rng.integers(0, 10, 7)
    path = tmp_path / 'mnist_rot_sample.amat'
    np.savetxt(path, np.column_stack([x, y]), fmt='%.8e')
    xr, yr = read_amat(path)
    assert xr.shape == (7, 784) and xr.dtype == np.float32 and yr.dtype == np.int64
    np.testing.assert_allclose(xr, x, atol=1e-6); np.testing.assert_array_equal(yr, y)
    xt, _ = read_amat(path, transpose=True)
    np.testing.assert_allclose(xt[3].reshape(28, 28), x[3].reshape(28, 28).T, atol=1e-6)
    np.savetxt(tmp_path / 'short.amat', x[:, :100])
    with pytest.raises(ValueError, match='expected 785 values a row'): read_amat(tmp_path / 'short.amat')
    np.savetxt(tmp_path / 'range.amat', np.column_stack([x * 2, y]))
    with pytest.raises(ValueError, match=r'outside \[0, 1\]'): read_amat(tmp_path / 'range.amat')
    np.savetxt(tmp_path / 'label.amat', np.column_stack([x, y + 0.5]))
    with pytest.raises(ValueError, match='labels must be integers'): read_amat(tmp_path / 'label.amat')


# ---------------------------------------------------------------- load_dataset

def test_split_indices_disjoint_and_fixed():
    for split in SPLITS:
        s = split_indices(split)
        allidx = torch.cat(list(s.values()))
        assert len(allidx.unique()) == len(allidx)
    s = split_indices('paper')
    assert [len(s[k]) for k in ('train', 'valid', 'test')] == [50_000, 8_000, 12_000]   # PROTOCOL §2: 50k / 12k, 8k left for validation
    assert len(torch.cat(list(s.values())).unique()) == 70_000
    assert torch.equal(split_indices('paper')['test'], s['test'])

@pytest.mark.parametrize('name', DATASETS)
def test_load_dataset_every_name_both_splits(data_root, generated, name):
    sizes = {'paper': (50_000, 8_000, 12_000), 'standard': (55_000, 5_000, 10_000)}
    for split in SPLITS:
        d = load_dataset(name, split, root=data_root, device='cpu')
        assert isinstance(d, DataBundle) and (d.name, d.split) == (name, split)
        assert (len(d.train), len(d.valid), len(d.test)) == sizes[split]
        for part in (d.train, d.valid, d.test):
            assert isinstance(part, Split) and part.x.dtype == torch.float32 and part.y.dtype == torch.int64
            assert part.x.shape == (len(part.y), 784) and part.x.device.type == 'cpu'
            assert set(part.y.unique().tolist()) == set(range(10))
        assert abs(d.train.x.mean().item()) < 1e-3 and abs(d.train.x.std().item() - 1) < 1e-3
        assert 0 < d.mean < 1 and 0 < d.std < 1
    if name in VARIANTS:  # the standard split's first training image is pool image 0 of the variant
        img = torch.from_numpy(generated(name)['images'][0]).float().reshape(-1) / 255
        torch.testing.assert_close(d.train.x[0], (img - d.mean) / d.std)

def test_load_dataset_standard_split_is_the_canonical_one(data_root):
    d = load_dataset('mnist', 'standard', root=data_root)
    counts = (torch.bincount(d.train.y, minlength=10) + torch.bincount(d.valid.y, minlength=10)).tolist()
    assert counts == MNIST_TRAIN_COUNTS

def test_load_dataset_bad_name_or_split_before_any_work(monkeypatch):
    def boom(*a, **k): raise AssertionError('data loaded before the arguments were checked')
    monkeypatch.setattr('nncomp.data.datasets.load_raw', boom)
    with pytest.raises(ValueError, match="dataset='cifar10' is not allowed; allowed: mnist, mnist-rot, mnist-back-rand, mnist-back-image, fashion-mnist"):
        load_dataset('cifar10')
    with pytest.raises(ValueError, match="split='larochelle' is not allowed; allowed: paper, standard"):
        load_dataset('mnist', 'larochelle')

def test_subsample():
    d = DataBundle('mnist', 'paper', *(Split(torch.randn(n, 784), torch.arange(n) % 10) for n in (4500, 500, 1200)), 0.1, 0.3)
    s = subsample(d, 900, 120, seed=1)
    assert (len(s.train), len(s.valid), len(s.test)) == (900, 100, 120)
    assert torch.equal(subsample(d, 900, 120, seed=1).train.x, s.train.x)
    assert not torch.equal(subsample(d, 900, 120, seed=2).train.x, s.train.x)
    assert (s.mean, s.std) == (d.mean, d.std) and len(subsample(d, None, None).train) == 4500
    with pytest.raises(ValueError, match='cannot take 5000 examples'): subsample(d, 5000, None)

def test_main_prints_summary(data_root, capsys, monkeypatch):
    monkeypatch.setenv('NNCOMP_DATA', str(data_root))
    main(['--datasets', 'mnist', '--splits', 'standard'])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:7] == ['dataset', 'split', 'train', 'valid', 'test', 'mean', 'std']
    assert lines[1].split()[:5] == ['mnist', 'standard', '55000', '5000', '10000']
    with pytest.raises(ValueError, match="dataset='svhn' is not allowed"): main(['--datasets', 'svhn'])
