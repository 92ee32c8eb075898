"""The checks at the trust boundaries, on in-memory archives and small trees: version ids, manifest
paths, tar members, the lock, the tree copy, and the feature cache's entry format and its
immutability checks (synthetic features, no databases)."""
import hashlib
import io
import json
import os
import pickle
import stat
import tarfile
import threading
import time
import types

import numpy as np
import pytest

from data_sync import fetch, layout, manifest, store
from fold_runtime import meta
from fold_runtime.cpu_stage import feature_cache
from kit_common import files, locks
from kit_common.errors import KitError

ID = '0123456789abcdef'


@pytest.mark.parametrize('text', [ID, ID + '.20260101120000'])
def test_version_ids_the_kit_writes_pass(text):
    assert layout.check_id(text, 'x') == text


@pytest.mark.parametrize('text', ['../escaped', '/etc', '', None, ID.upper(), ID + '0', ID + '/..', ID + '.2026',
                                  ID + '\n', '.', 'versions/' + ID])
def test_anything_else_is_refused_before_it_becomes_a_path(text):
    with pytest.raises(KitError) as err:
        layout.check_id(text, 'the link L')
    assert err.value.exit_code == 6 and 'the link L' in err.value.problem


def good_manifest(**files_):
    return {'id': ID, 'archives': {}, 'files': files_ or {'uniref90/uniref90.fasta': {'size': 3, 'sha256': 'a' * 64}}}


@pytest.mark.parametrize('rel', ['../x', '/etc/passwd', 'a/../../b', 'a//b', './a', 'a/.', 'a\nb', 'a\0b', ''])
def test_manifest_paths_that_leave_the_tree_are_refused(rel):
    with pytest.raises(KitError) as err:
        manifest.checked(good_manifest(**{rel: {'size': 1, 'sha256': 'a' * 64}}), 'M')
    assert 'leaves the tree' in err.value.problem


@pytest.mark.parametrize('entry', [{'size': -1, 'sha256': 'a' * 64}, {'size': '3', 'sha256': 'a' * 64},
                                   {'size': 3, 'sha256': 'x'}, {'size': 3}, 'a file'])
def test_manifest_entries_must_be_sizes_and_hashes(entry):
    with pytest.raises(KitError):
        manifest.checked(good_manifest(**{'a/b': entry}), 'M')


def test_a_good_manifest_passes_and_a_bad_id_does_not():
    assert manifest.checked(good_manifest(), 'M')['id'] == ID
    with pytest.raises(KitError):
        manifest.checked(dict(good_manifest(), id='../x'), 'M')


def test_build_keeps_recorded_entries_instead_of_rehashing(tmp_path):
    (tmp_path / 'db').mkdir()
    (tmp_path / 'db' / 'kept').write_bytes(b'rotted')        # same size as what was recorded
    (tmp_path / 'db' / 'new').write_bytes(b'fresh')
    recorded = {'size': 6, 'sha256': 'b' * 64}
    built = manifest.build(str(tmp_path), known={'db/kept': recorded})
    assert built['files']['db/kept'] == recorded
    assert built['files']['db/new'] == {'size': 5, 'sha256': hashlib.sha256(b'fresh').hexdigest()}
    with pytest.raises(KitError) as err:                      # a kept file whose size changed since
        manifest.build(str(tmp_path), known={'db/kept': {'size': 7, 'sha256': 'b' * 64}})
    assert 'changed since it was kept' in err.value.problem
    os.symlink('/etc/hostname', str(tmp_path / 'db' / 'link'))
    with pytest.raises(KitError) as err:
        manifest.build(str(tmp_path))
    assert 'not a regular file' in err.value.problem


def test_verify_reports_a_link_in_place_of_a_file(tmp_path):
    (tmp_path / 'a').mkdir()
    os.symlink('/etc/hostname', str(tmp_path / 'a' / 'b'))
    problems = manifest.verify(str(tmp_path), good_manifest(**{'a/b': {'size': os.path.getsize('/etc/hostname'),
                                                                        'sha256': 'a' * 64}}))
    assert problems == ['a/b: not a regular file']


def tarball(*members):
    """An in-memory tar.gz of (TarInfo fields, content) pairs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:gz') as tar:
        for fields, content in members:
            info = tarfile.TarInfo(fields['name'])
            for k, v in fields.items():
                setattr(info, k, v)
            if content is not None:
                info.size = len(content)
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    return buf.getvalue()


GOOD = ({'name': 'db', 'type': tarfile.DIRTYPE, 'mode': 0o2755}, None), \
       ({'name': 'db/data.ffdata', 'mode': 0o644}, b'x' * 100), ({'name': 'db/tool', 'mode': 0o755}, b'#!/bin/sh\n')
EVIL = {
    'a symbolic link': ({'name': 'link', 'type': tarfile.SYMTYPE, 'linkname': '/tmp'}, None),
    'a hard link': ({'name': 'hl', 'type': tarfile.LNKTYPE, 'linkname': '/etc/passwd'}, None),
    'a device': ({'name': 'null', 'type': tarfile.CHRTYPE, 'devmajor': 1, 'devminor': 3}, None),
    'a FIFO': ({'name': 'fifo', 'type': tarfile.FIFOTYPE}, None),
    'setuid or setgid': ({'name': 'suid', 'mode': 0o4755}, b'x'),
    'an absolute path or one with ..': ({'name': '../escaped', 'mode': 0o644}, b'x'),
}


@pytest.mark.parametrize('problem', sorted(EVIL))
@pytest.mark.parametrize('data_filter', [True, False], ids=['data-filter', 'plain'])
def test_tar_members_other_than_files_and_directories_stop_the_unpack(tmp_path, monkeypatch, problem, data_filter):
    monkeypatch.setattr(fetch, 'DATA_FILTER', data_filter and fetch.DATA_FILTER)
    archive = tmp_path / 'a.tar.gz'
    fields, content = EVIL[problem]
    archive.write_bytes(tarball(*GOOD, (fields, content)))
    with pytest.raises(KitError) as err:
        fetch.extract_tar(str(archive), str(tmp_path / 'tree'))
    assert "member %r is %s" % (fields['name'], problem) in err.value.problem and err.value.exit_code == 4
    assert sorted(os.listdir(str(tmp_path))) == ['a.tar.gz', 'tree']


def test_a_path_through_an_existing_link_is_outside_the_tree(tmp_path):
    (tmp_path / 'tree').mkdir()
    os.symlink(str(tmp_path), str(tmp_path / 'tree' / 'up'))
    member = tarfile.TarInfo('up/x')
    assert fetch.member_problem(member, str(tmp_path / 'tree')) == 'a path outside the tree'


# Both ways where this Python has tarfile's data filter (CI's 3.11 has), the plain check elsewhere.
@pytest.mark.parametrize('data_filter', [True, False] if fetch.DATA_FILTER else [False])
def test_good_archives_unpack_the_same_with_or_without_the_data_filter(tmp_path, monkeypatch, data_filter):
    monkeypatch.setattr(fetch, 'DATA_FILTER', data_filter)
    archive = tmp_path / 'a.tar.gz'
    archive.write_bytes(tarball(*(({**f, 'mtime': 1000000000}, c) for f, c in GOOD)))
    old = os.umask(0o022)
    try:
        fetch.extract_tar(str(archive), str(tmp_path / 'tree'))
    finally:
        os.umask(old)
    tree = tmp_path / 'tree' / 'db'
    assert (tree / 'data.ffdata').read_bytes() == b'x' * 100
    assert stat.S_IMODE(os.stat(str(tree / 'data.ffdata')).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(str(tree / 'tool')).st_mode) == 0o755
    assert os.stat(str(tree / 'data.ffdata')).st_mtime == 1000000000


def test_an_mmcif_tree_with_a_link_is_refused(tmp_path):
    raw = tmp_path / 'raw' / 'ab'
    raw.mkdir(parents=True)
    os.symlink('/etc/hostname', str(raw / '1abc.cif.gz'))
    with pytest.raises(KitError) as err:
        fetch.unpack_tree(str(tmp_path / 'raw'), str(tmp_path / 'tree'))
    assert "member 'ab/1abc.cif.gz' is not a regular file" in err.value.problem


def take_lock(root, got):
    with locks.exclusive(root, 'third'):
        got.append(1)


def test_the_lock_names_its_holder_and_a_waiter_gets_it_after_release(tmp_path):
    got = []
    with locks.exclusive(str(tmp_path), 'first command'):
        with pytest.raises(locks.Busy) as busy:
            with locks.exclusive(str(tmp_path), 'second', wait=False):
                pass
        assert 'first command (pid %d' % os.getpid() in str(busy.value)
        waiter = threading.Thread(target=take_lock, args=(str(tmp_path), got))
        waiter.start()
        time.sleep(0.3)
        assert not got                       # still waiting
    waiter.join(5)
    assert got == [1]


def test_link_tree_links_files_keeps_links_and_leaves_the_source(tmp_path):
    src = tmp_path / 'src'
    (src / 'a').mkdir(parents=True)
    (src / 'a' / 'f').write_text('data')
    os.symlink('f', str(src / 'a' / 'l'))
    files.link_tree(str(src), str(tmp_path / 'dst'))
    assert os.stat(str(src / 'a' / 'f')).st_ino == os.stat(str(tmp_path / 'dst' / 'a' / 'f')).st_ino
    assert os.readlink(str(tmp_path / 'dst' / 'a' / 'l')) == 'f'
    assert (src / 'a' / 'f').read_text() == 'data'


def test_only_version_directories_are_pruned(tmp_path):
    for name in (ID, 'fedcba9876543210', 'lost+found', 'notes'):
        (tmp_path / name).mkdir()
    os.symlink('/tmp', str(tmp_path / ('1' * 16)))
    os.symlink(ID, str(tmp_path / 'current'))
    (tmp_path / ID / 'manifest.id').write_text(ID + '\n')
    assert store.prune(str(tmp_path), 1, local=True) == [str(tmp_path / 'fedcba9876543210')]
    assert sorted(os.listdir(str(tmp_path))) == sorted([ID, 'lost+found', 'notes', '1' * 16, 'current'])


def test_the_same_content_republished_within_a_second_gets_its_own_directory(tmp_path):
    for i in range(3):
        (tmp_path / str(i)).mkdir()
        store.publish(str(tmp_path / 'root'), str(tmp_path / str(i)), ID)
    names = os.listdir(str(tmp_path / 'root' / 'versions'))
    assert len(names) == 3 and all(layout.VERSION_ID.fullmatch(n) for n in names)


# The feature cache, on synthetic features of AlphaFold's dtypes and key order.

def features(sequence=b'MKV'):
    n = len(sequence)
    return {'aatype': np.eye(21, dtype=np.int32)[:n], 'domain_name': np.array([b'T1 first'], dtype=np.object_),
            'sequence': np.array([sequence], dtype=np.object_), 'seq_length': np.full(n, n, dtype=np.int32),
            'msa_species_identifiers': np.array([b'', b'HUMAN', b'\xff\x00'], dtype=np.object_),
            'template_domain_names': np.array([], dtype=np.object_),
            'template_all_atom_positions': np.zeros((0, n, 37, 3), dtype=np.float32)}


@pytest.fixture
def cached(tmp_path):
    """A CPU-stage output directory stored in a fresh cache: (cache, wanted, entry directory)."""
    tdir = tmp_path / 'run' / 'T1'
    (tdir / 'msas').mkdir(parents=True)
    (tdir / 'msas' / 'uniref90_hits.sto').write_text('# STOCKHOLM 1.0\n//\n')
    wanted = {'sequence_sha256': meta.sequence_sha256('MKV'), 'db_preset': 'reduced_dbs',
              'max_template_date': '2100-01-01', 'databases': None, 'data_manifest_id': ID}
    cache = str(tmp_path / 'cache')
    assert feature_cache.store(cache, wanted, features(), str(tdir / 'msas')) is True
    return cache, wanted, feature_cache.entry_dir(cache, wanted)


def fetch_into(tmp_path, cache, wanted, description='T2 other'):
    tdir = tmp_path / ('out%d' % len(os.listdir(str(tmp_path))))
    tdir.mkdir()
    target = types.SimpleNamespace(name='T2', description=description)
    hit = feature_cache.fetch(cache, wanted, target, str(tdir))
    return hit, tdir


def test_a_cache_round_trip_keeps_every_key_dtype_shape_and_byte(tmp_path, cached):
    cache, wanted, entry = cached
    assert sorted(os.listdir(entry)) == ['entry.json', 'features.npz', 'msas']
    hit, tdir = fetch_into(tmp_path, cache, wanted)
    assert hit
    with open(str(tdir / 'features.pkl'), 'rb') as f:
        got = pickle.load(f)
    want = dict(features(), domain_name=np.array([b'T2 other'], dtype=np.object_))
    assert list(got) == list(want)
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape and np.array_equal(got[k], want[k]), k
        if got[k].dtype == np.object_:
            assert all(type(x) is bytes for x in got[k].flat), k
    assert (tdir / 'msas' / 'uniref90_hits.sto').read_text() == '# STOCKHOLM 1.0\n//\n'


def rewrite(path, change):
    os.chmod(path, 0o644)
    with open(path, 'r+b') as f:
        data = bytearray(f.read())
        change(data)
        f.seek(0)
        f.write(data)
        f.truncate()
    os.chmod(path, 0o444)


def flip(data):
    data[len(data) // 2] ^= 1


def edit_record(entry, change):
    def rewritten(data):
        record = json.loads(bytes(data))
        change(record)
        data[:] = json.dumps(record).encode()
    rewrite(os.path.join(entry, 'entry.json'), rewritten)


TAMPERING = {
    'a flipped byte in features.npz': lambda e: rewrite(os.path.join(e, 'features.npz'), flip),
    'a flipped byte in an MSA': lambda e: rewrite(os.path.join(e, 'msas', 'uniref90_hits.sto'), flip),
    'a recorded shape changed': lambda e: edit_record(e, lambda r: r['features'][0].update(shape=[4, 21])),
    'another sequence recorded': lambda e: edit_record(e, lambda r: r['text'].update(sequence=['MKW'])),
    'a file outside msas/ listed': lambda e: edit_record(e, lambda r: r['files'].update({'../x': 'a' * 64})),
    'other inputs recorded': lambda e: edit_record(e, lambda r: r['meta'].update(db_preset='full_dbs')),
    'a group-writable file': lambda e: os.chmod(os.path.join(e, 'features.npz'), 0o664),
    'a group-writable entry': lambda e: os.chmod(e, 0o775),
    'a link inside': lambda e: os.symlink('/etc/hostname', os.path.join(e, 'msas', 'extra')),
    'a shard without the sticky bit': lambda e: os.chmod(os.path.dirname(e), 0o2775),
    'an old pickle entry': lambda e: [os.chmod(e, 0o755), os.unlink(os.path.join(e, 'entry.json'))],
}


@pytest.mark.parametrize('case', sorted(TAMPERING))
def test_a_tampered_entry_is_a_logged_miss(tmp_path, cached, case, caplog):
    cache, wanted, entry = cached
    TAMPERING[case](entry)
    hit, tdir = fetch_into(tmp_path, cache, wanted)
    assert hit is False and os.listdir(str(tdir)) == []        # nothing half-filled
    assert 'not used' in caplog.text and entry in caplog.text


def test_a_cache_that_cannot_be_written_is_logged_not_fatal(tmp_path, caplog):
    tdir = tmp_path / 'T1'
    tdir.mkdir()
    (tmp_path / 'cache').write_text('a file where the cache should be')
    assert feature_cache.store(str(tmp_path / 'cache'), {}, {}, str(tdir)) is False
    assert 'not added to the feature cache' in caplog.text


# ---- Stored search results --------------------------------------------------------------------

STORED = {   # tool: what it stores for the query MKVLAEE (a Stockholm file in two blocks)
    'jackhmmer': '# STOCKHOLM 1.0\n#=GS h1 DE hit\n\nq   MKV-LA\nh1  MKVQLA\n\nq   .EE\nh1  gEE\n#=GC RF xxx\n//\n',
    'hhblits': '>q query\nMKVLA\nEE\n>h1\nMKaVLA-E\n',
    'hhsearch': 'Query         q\nMatch_columns 7\nNo_of_seqs    1 out of 1\n',
}


@pytest.mark.parametrize('tool', sorted(STORED))
def test_a_stored_search_result_is_reused_only_for_its_own_query(tmp_path, tool):
    from fold_runtime.cpu_stage import stored
    path = tmp_path / 'result'
    path.write_text(STORED[tool])
    stored.check(str(path), tool, 'MKVLAEE')
    with pytest.raises(KitError) as err:
        stored.check(str(path), tool, 'MKVLAE')
    assert err.value.exit_code == 6 and str(path) in err.value.problem and '--overwrite' in err.value.fix


# ---- Reuse keys hold the stack -----------------------------------------------------------------

STACK = {'alphafold_distribution': 'alphafold', 'alphafold_version': '2.3.2', 'semantics': 'deepmind-v2.3.2',
         'tools': {'jackhmmer': '3.4', 'hhblits': '3.3.0', 'hhsearch': '3.3.0', 'kalign': '2.04'}}


@pytest.mark.parametrize('change', [
    {'alphafold_distribution': 'alphafold-colabfold', 'alphafold_version': '2.3.27'},
    {'alphafold_version': '2.3.1'},
    {'tools': dict(STACK['tools'], jackhmmer='3.3.2')},
    {'tools': dict(STACK['tools'], hhblits='3.3.1', hhsearch='3.3.1')},
    {'tools': dict(STACK['tools'], kalign='3.4.0')},
], ids=['distribution', 'alphafold-version', 'hmmer', 'hh-suite', 'kalign'])
def test_features_made_under_another_stack_are_never_reused(tmp_path, change):
    """Another AlphaFold or tool version: the features meta mismatches (exit 6) and the feature
    cache misses."""
    made = dict(STACK, sequence_sha256=meta.sequence_sha256('MKV'), db_preset='full_dbs',
                max_template_date='2100-01-01', databases=None, data_manifest_id=ID)
    now = dict(made, **change)
    with pytest.raises(KitError) as err:
        meta.check_match(str(tmp_path), made, now)
    assert err.value.exit_code == 6 and sorted(change)[0] in err.value.problem
    tdir = tmp_path / 'T1' / 'msas'
    tdir.mkdir(parents=True)
    cache = str(tmp_path / 'cache')
    assert feature_cache.store(cache, made, features(), str(tdir)) is True
    assert fetch_into(tmp_path, cache, now)[0] is False
    assert fetch_into(tmp_path, cache, made)[0] is True


@pytest.mark.parametrize('change', [
    {'alphafold_distribution': 'alphafold-colabfold', 'alphafold_version': '2.3.27'},
    {'alphafold_version': '2.3.1'},
], ids=['distribution', 'alphafold-version'])
def test_a_model_predicted_under_another_alphafold_is_predicted_again(tmp_path, change):
    """prediction.meta.json: a model whose record names another AlphaFold is not kept, though its
    files exist and every other input matches."""
    from fold_runtime.gpu_stage import records
    wanted = dict(STACK, features_sha256='0' * 64, seed=0, num_recycle=3, num_ensemble=1, padded_length=24,
                  weights={'file': 'params_model_1_ptm.npz', 'size': 1, 'mtime_ns': 1})
    name = 'model_1_ptm'
    for f in records.model_files(name, wanted, result_pkl=False):
        (tmp_path / f).write_text('')
    records.save_model(str(tmp_path), name, wanted)
    assert records.finished(str(tmp_path), name, wanted, result_pkl=False)
    records.save_model(str(tmp_path), name, dict(wanted, **change))
    assert not records.finished(str(tmp_path), name, wanted, result_pkl=False)
