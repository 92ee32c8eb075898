"""Bad input and faults in the CPU stage: a message naming problem and fix, a non-zero exit,
and never a features.pkl left behind."""
import glob
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT


def assert_failed(res, code, *words, out=None):
    assert res.returncode == code, res.stdout
    assert 'error:' in res.stdout and 'fix:' in res.stdout, res.stdout
    for word in words:
        assert word in res.stdout, (word, res.stdout)
    if out is not None:
        assert not glob.glob(os.path.join(str(out), '**', 'features.pkl'), recursive=True)


def msa(kit, data_dir, fasta, out, *extra, env=None):
    return kit('msa', '--fasta', *([fasta] if isinstance(fasta, (str, os.PathLike)) else fasta),
               '--output-dir', out, '--data-dir', data_dir, '--db-preset', 'reduced_dbs', *extra,
               env=env)


def shadow(data_dir, tmp_path, replace):
    """A data directory of symlinks to the test databases, with some files replaced or removed."""
    root = tmp_path / 'data'
    for src in glob.glob(os.path.join(data_dir, '**', '*'), recursive=True):
        rel = os.path.relpath(src, data_dir)
        dst = root / rel
        if os.path.isdir(src) and not rel.startswith('pdb_mmcif/mmcif_files'):
            dst.mkdir(parents=True, exist_ok=True)
        elif rel in replace:
            if replace[rel] is not None:
                dst.write_bytes(replace[rel])
        elif not dst.parent.is_symlink() and not os.path.exists(dst):
            dst.symlink_to(src)
    return str(root)


@pytest.mark.parametrize('content, words', [
    ('', ['is empty']),
    ('>lonely header\n', ['has no sequence']),
    ('>dna\nMKV1LL*\n', ['not amino acids', "'1'", 'residue 4']),
    ('>a\nMKVLA\n>b\nMKVLL\n', ['2 sequences', 'exactly one', 'alphafold-batch']),
    ('MKVLA\n', ['before any header']),
])
def test_malformed_fasta(kit, data_dir, tmp_path, content, words):
    fasta = tmp_path / 'bad.fasta'
    fasta.write_text(content)
    assert_failed(msa(kit, data_dir, fasta, tmp_path / 'out'), 2, str(fasta), *words, out=tmp_path)


def test_duplicate_target_names(kit, data_dir, targets, tmp_path):
    for d in ('a', 'b'):
        (tmp_path / d).mkdir()
        (tmp_path / d / 'prot.fasta').write_text(open(targets['e2_dbd']).read())
    res = msa(kit, data_dir, [tmp_path / 'a' / 'prot.fasta', tmp_path / 'b' / 'prot.fasta'], tmp_path / 'out')
    assert_failed(res, 2, "same target name 'prot'", 'rename', out=tmp_path)


def test_missing_database_file_is_named(kit, data_dir, targets, tmp_path):
    data = shadow(data_dir, tmp_path, {'mgnify/mgy_clusters_2022_05.fa': None})
    res = msa(kit, data, targets['e2_dbd'], tmp_path / 'out')
    assert_failed(res, 3, 'mgnify/mgy_clusters_2022_05.fa', 'alphafold-data download --databases mgnify',
                  out=tmp_path)


def test_missing_binary_names_its_package(kit, data_dir, targets, tmp_path):
    (tmp_path / 'bin').mkdir()
    res = msa(kit, data_dir, targets['e2_dbd'], tmp_path / 'out', env={'PATH': str(tmp_path / 'bin')})
    assert_failed(res, 3, 'jackhmmer not found on PATH', 'hmmer', out=tmp_path)
    res = msa(kit, data_dir, targets['e2_dbd'], tmp_path / 'out', '--kalign-binary', '/no/kalign')
    assert_failed(res, 3, 'kalign not found at /no/kalign', 'pip install colabfold-binaries', out=tmp_path)
    # reduced_dbs runs no HHblits, so it does not need one.
    res = msa(kit, data_dir, targets['e2_dbd'], tmp_path / 'out', '--hhblits-binary', '/no/hhblits')
    assert res.returncode == 0, res.stdout


def test_failing_search_shows_tool_stderr(kit, data_dir, targets, tmp_path):
    data = shadow(data_dir, tmp_path, {'uniref90/uniref90.fasta': b'this is not a FASTA file\n'})
    res = msa(kit, data, targets['e2_dbd'], tmp_path / 'out')
    assert_failed(res, 4, 'search uniref90 (jackhmmer) failed', 'Jackhmmer failed',
                  'uniref90.fasta is empty or misformatted', out=tmp_path)


def test_search_past_timeout_is_killed(kit, data_dir, targets, tmp_path):
    res = msa(kit, data_dir, targets['hbb_human'], tmp_path / 'out', '--timeout', '0.2')
    assert_failed(res, 4, 'exceeded --timeout 0.2s', out=tmp_path)
    time.sleep(0.5)
    left = subprocess.run(['pgrep', '-f', str(tmp_path)], stdout=subprocess.PIPE).stdout
    assert not left, 'search processes survived the timeout'


def test_unwritable_output_dir(kit, data_dir, targets, mount_tmpfs):
    readonly = mount_tmpfs('ro,size=1m')
    res = msa(kit, data_dir, targets['e2_dbd'], readonly / 'out')
    assert_failed(res, 5, str(readonly / 'out'), '--output-dir')


def test_full_disk(kit, data_dir, targets, mount_tmpfs):
    small = mount_tmpfs('size=64k')   # holds the MSAs but not the 180 kB features.pkl
    res = msa(kit, data_dir, targets['e2_dbd'], small)
    assert_failed(res, 5, 'no space left on the device', out=small)
    assert not [f for f in os.listdir(small / 'e2_dbd') if f.startswith('.tmp-')]


def test_sigkill_then_rerun_resumes(kit, data_dir, targets, tmp_path):
    out = tmp_path / 'out'
    proc = subprocess.Popen([sys.executable, '-m', 'fold_runtime', 'msa', '--fasta', targets['hbb_human'],
                             '--output-dir', str(out), '--data-dir', data_dir, '--cpus', '2'],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    msas = out / 'hbb_human' / 'msas'
    deadline = time.time() + 60
    while not (msas.exists() and any(not f.startswith('.') for f in os.listdir(msas))):
        assert time.time() < deadline, 'no search finished'
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)   # mid-run: some searches done, others not
    proc.wait()
    assert not (out / 'hbb_human' / 'features.pkl').exists()
    deadline = time.time() + 10        # the search children and their tools die with their parent
    while subprocess.run(['pgrep', '-f', str(out)], stdout=subprocess.PIPE).stdout:
        assert time.time() < deadline, 'search processes outlived the killed alphafold-msa'
        time.sleep(0.1)
    res = msa(kit, data_dir, targets['hbb_human'], out, '--db-preset', 'full_dbs')
    assert res.returncode == 0, res.stdout
    assert 'resuming' in res.stdout and 'reusing its stored result' in res.stdout
    assert (out / 'hbb_human' / 'features.pkl').exists()
    assert not [f for d in (out / 'hbb_human', msas) for f in os.listdir(d) if f.startswith('.tmp-')]


def test_two_runs_on_one_output_directory_do_not_race(kit, data_dir, targets, tmp_path):
    """The second waits for the first (a per-target lock), then reuses its features."""
    cmd = [sys.executable, '-m', 'fold_runtime', 'msa', '--fasta', targets['e2_dbd'], '--output-dir',
           str(tmp_path / 'out'), '--data-dir', data_dir, '--db-preset', 'reduced_dbs']
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True) for _ in range(2)]
    outputs = [p.communicate()[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert not any('Traceback' in o for o in outputs)
    assert sum('reusing it' in o for o in outputs) == 1 and any('waiting for' in o for o in outputs), outputs


def test_a_full_disk_during_a_search_is_exit_5(kit, data_dir, targets, mount_tmpfs):
    """The search child's own exit status passes through: a full disk is 5, not a failed search (4)."""
    small = mount_tmpfs('size=40k')   # the meta and query fit, hbb_human's UniRef90 hits do not
    res = msa(kit, data_dir, targets['hbb_human'], small, '--db-preset', 'reduced_dbs')
    assert_failed(res, 5, 'ran out of disk space', 'free space', out=small)


@pytest.mark.parametrize('content, words', [
    ('>a\nMKVLA\n>b\n\n', ['record ">b" has no sequence']),
    ('>ab\nMKVLA::MKVLL\n', ['record ">ab" chain 2 is empty', "doubled ':'"]),
    ('>a\nMKVLA\n>b\nMKV1L\n', ['record ">b" has characters that are not amino acids', "'1'"]),
    ('>a\nMKVLA:MKVLL\n>b\nMKVLA\n', ['mixes its two notations']),
])
def test_malformed_complex_fasta(kit, data_dir, tmp_path, content, words):
    fasta = tmp_path / 'bad.fasta'
    fasta.write_text(content)
    res = msa(kit, data_dir, fasta, tmp_path / 'out', '--model-preset', 'multimer')
    assert_failed(res, 2, str(fasta), *words, out=tmp_path)


def test_multimer_names_a_missing_uniprot(kit, data_dir, targets, tmp_path):
    data = shadow(data_dir, tmp_path, {'uniprot/uniprot.fasta': None})
    res = msa(kit, data, targets['pim1_epha2'], tmp_path / 'out', '--model-preset', 'multimer')
    assert_failed(res, 3, 'uniprot/uniprot.fasta', 'needed by --model-preset multimer',
                  'alphafold-data download --databases uniprot', out=tmp_path)
    assert 'Traceback' not in res.stdout
    # A monomer run does not need it.
    assert msa(kit, data, targets['conotoxin'], tmp_path / 'mono').returncode == 0


def test_multimer_refuses_msa_and_monomer_refuses_complexes(kit, data_dir, targets, tmp_path):
    res = msa(kit, data_dir, targets['pim1_epha2'], tmp_path / 'out', '--model-preset', 'multimer',
              '--msa', targets['pim1_epha2'])
    assert_failed(res, 2, '--msa replaces the searches of a monomer target', out=tmp_path)
    res = msa(kit, data_dir, targets['pim1_epha2'], tmp_path / 'out')
    assert_failed(res, 2, 'holds 2 sequences', '--model-preset multimer', out=tmp_path)


def test_overwrite_replaces_a_symlinked_msas_dir_instead_of_reusing_what_it_points_to(kit, data_dir, targets,
                                                                                     tmp_path):
    """A symlinked msas/ (the "precomputed MSAs" habit) holding another protein's searches: --overwrite
    searches again in a directory of its own, leaving the link's target alone, and the cache gets
    the target's own features."""
    assert msa(kit, data_dir, targets['hbb_human'], tmp_path / 'victim', '--no-templates').returncode == 0
    victim = tmp_path / 'victim' / 'hbb_human' / 'msas'
    before = {f: (victim / f).read_bytes() for f in os.listdir(victim)}
    (tmp_path / 'out' / 'e2_dbd').mkdir(parents=True)
    os.symlink(str(victim), str(tmp_path / 'out' / 'e2_dbd' / 'msas'))
    res = msa(kit, data_dir, targets['e2_dbd'], tmp_path / 'out', '--no-templates', '--overwrite',
              '--feature-cache', tmp_path / 'cache')
    assert res.returncode == 0, res.stdout
    assert 'reusing its stored result' not in res.stdout
    assert not os.path.islink(tmp_path / 'out' / 'e2_dbd' / 'msas')
    assert {f: (victim / f).read_bytes() for f in os.listdir(victim)} == before
    with open(tmp_path / 'out' / 'e2_dbd' / 'features.pkl', 'rb') as f:
        assert pickle.load(f)['msa'].shape[1] == 82       # e2_dbd's own MSA, not hbb_human's 146 columns
    res = msa(kit, data_dir, targets['e2_dbd'], tmp_path / 'again', '--no-templates', '--feature-cache',
              tmp_path / 'cache')
    assert res.returncode == 0 and 'features from the shared cache' in res.stdout, res.stdout
    with open(tmp_path / 'again' / 'e2_dbd' / 'features.pkl', 'rb') as f:
        assert pickle.load(f)['msa'].shape[1] == 82


@pytest.mark.parametrize('name', ['uniref90_hits.sto', 'small_bfd_hits.sto'])
def test_a_stored_search_result_of_another_protein_is_refused(kit, data_dir, targets, tmp_path, name):
    """An interrupted run resumes from its stored searches only when they were made for its query."""
    for target in ('hbb_human', 'e2_dbd'):
        assert msa(kit, data_dir, targets[target], tmp_path / 'out').returncode == 0
    tdir = tmp_path / 'out' / 'e2_dbd'
    os.unlink(str(tdir / 'features.pkl'))                 # as a run killed after its searches leaves it
    os.replace(str(tmp_path / 'out' / 'hbb_human' / 'msas' / name), str(tdir / 'msas' / name))
    res = msa(kit, data_dir, targets['e2_dbd'], tmp_path / 'out')
    assert_failed(res, 6, str(tdir / 'msas' / name), 'not made for this query of 82 residues', '146 residues',
                  '--overwrite')
    assert not (tdir / 'features.pkl').exists() and 'started:' not in res.stdout
