"""The shared feature cache: a sequence anyone already ran costs no CPU stage."""
import json
import os
import pickle
import stat
import threading

import numpy as np

from fold_runtime import meta
from fold_runtime.cpu_stage import feature_cache
from test_msa_parity import assert_same_features


def msa(kit, data_dir, fasta, out, cache, *extra):
    return kit('msa', '--fasta', fasta, '--output-dir', out, '--data-dir', data_dir, '--db-preset', 'reduced_dbs',
               '--feature-cache', cache, *extra)


def test_second_target_with_the_same_sequence_reuses_the_cache(kit, data_dir, targets, tmp_path):
    cache = tmp_path / 'cache'
    assert msa(kit, data_dir, targets['conotoxin'], tmp_path / 'a', cache).returncode == 0
    other = tmp_path / 'renamed.fasta'
    other.write_text('>renamed some other description\n%s\n' % open(targets['conotoxin']).read().split('\n')[1])
    res = msa(kit, data_dir, other, tmp_path / 'b', cache)
    assert res.returncode == 0, res.stdout
    assert 'features from the shared cache' in res.stdout and 'started: jackhmmer' not in res.stdout
    with open(tmp_path / 'a' / 'conotoxin' / 'features.pkl', 'rb') as f:
        first = pickle.load(f)
    with open(tmp_path / 'b' / 'renamed' / 'features.pkl', 'rb') as f:
        reused = pickle.load(f)
    assert reused['domain_name'][0] == b'renamed some other description'   # its own description
    first['domain_name'] = reused['domain_name']
    assert_same_features(reused, first)
    stored = json.loads((tmp_path / 'b' / 'renamed' / 'features.meta.json').read_text())
    assert stored['features_source'] == 'cache' and stored['target'] == 'renamed'
    assert sorted(os.listdir(tmp_path / 'b' / 'renamed' / 'msas')) == sorted(os.listdir(tmp_path / 'a' / 'conotoxin' / 'msas'))
    # Other inputs (a template date) are another cache entry: a miss, and a CPU stage.
    res = msa(kit, data_dir, targets['conotoxin'], tmp_path / 'c', cache, '--max-template-date', '2000-01-01')
    assert res.returncode == 0 and 'started: jackhmmer' in res.stdout


def test_concurrent_writers_leave_one_immutable_entry(kit, data_dir, targets, tmp_path):
    assert kit('msa', '--fasta', targets['conotoxin'], '--output-dir', tmp_path / 'a', '--data-dir', data_dir,
               '--db-preset', 'reduced_dbs').returncode == 0
    tdir = str(tmp_path / 'a' / 'conotoxin')
    wanted = meta.load(tdir)
    cache = str(tmp_path / 'cache')
    results = []
    with open(os.path.join(tdir, 'features.pkl'), 'rb') as f:
        feats = pickle.load(f)
    msas = os.path.join(tdir, 'msas')
    threads = [threading.Thread(target=lambda: results.append(feature_cache.store(cache, wanted, feats, msas)))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    entry = feature_cache.entry_dir(cache, wanted)
    parent = os.path.dirname(entry)
    assert os.listdir(parent) == [os.path.basename(entry)]          # no temporary debris
    for d in (cache, parent):                                        # group rwx, setgid, sticky
        assert stat.S_IMODE(os.stat(d).st_mode) & 0o3070 == 0o3070
    for directory, _, names in os.walk(entry):                       # immutable: nobody else writes
        assert stat.S_IMODE(os.stat(directory).st_mode) & 0o072 == 0o050
        for name in names:
            assert stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode) & 0o262 == 0o040
    with np.load(os.path.join(entry, 'features.npz'), allow_pickle=False) as arrays:   # no pickle
        assert arrays['aatype'].shape == (24, 21)
