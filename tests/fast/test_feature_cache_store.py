"""The feature cache's store: a broken entry is replaced by the next store, a good one never."""
import os
import types

import numpy as np

from fold_runtime import meta
from fold_runtime.cpu_stage import feature_cache

TARGET = types.SimpleNamespace(name='t', description='t a test target')


def _inputs(tmp_path):
    wanted = {'sequence_sha256': meta.sequence_sha256('ACD'), 'db_preset': 'reduced_dbs'}
    feats = {'sequence': np.array([b'ACD'], dtype=np.object_), 'aatype': np.zeros((3, 21), np.float32)}
    msas = tmp_path / 'msas'
    msas.mkdir()
    (msas / 'uniref90_hits.sto').write_text('# STOCKHOLM 1.0\n')
    return str(tmp_path / 'cache'), wanted, feats, str(msas)


def _rot(path):
    os.chmod(path, 0o640)
    with open(path, 'r+b') as f:
        f.seek(10)
        byte = f.read(1)
        f.seek(10)
        f.write(bytes([byte[0] ^ 0xff]))
    os.chmod(path, 0o440)


def test_a_corrupt_entry_is_replaced_by_the_next_store(tmp_path):
    cache, wanted, feats, msas = _inputs(tmp_path)
    assert feature_cache.store(cache, wanted, feats, msas)
    entry = feature_cache.entry_dir(cache, wanted)
    _rot(os.path.join(entry, 'features.npz'))
    assert feature_cache.fetch_msas(cache, wanted, TARGET, str(tmp_path / 'out')) is None   # a miss
    assert feature_cache.store(cache, wanted, feats, msas)
    assert feature_cache.fetch_msas(cache, wanted, TARGET, str(tmp_path / 'out'))['aatype'].shape == (3, 21)
    assert os.listdir(os.path.dirname(entry)) == [os.path.basename(entry)]     # no debris


def test_a_good_entry_is_never_replaced(tmp_path, monkeypatch):
    cache, wanted, feats, msas = _inputs(tmp_path)
    assert feature_cache.store(cache, wanted, feats, msas)
    entry = feature_cache.entry_dir(cache, wanted)
    inode = os.stat(entry).st_ino
    assert not feature_cache.store(cache, wanted, feats, msas)
    # Judged broken, then found good once moved (a concurrent writer replaced it): it stays.
    monkeypatch.setattr(feature_cache, '_broken', lambda *args: 'judged broken a moment ago')
    assert not feature_cache.store(cache, wanted, feats, msas)
    assert os.stat(entry).st_ino == inode
    assert os.listdir(os.path.dirname(entry)) == [os.path.basename(entry)]
