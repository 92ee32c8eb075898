"""alphafold-msa: reuse on a matching meta, refusal on a mismatch, options, no model code."""
import json
import os
import subprocess
import sys


def run_e2(kit, data_dir, targets, out, *extra, env=None):
    return kit('msa', '--fasta', targets['e2_dbd'], '--output-dir', out, '--data-dir', data_dir,
               '--db-preset', 'reduced_dbs', *extra, env=env)


def test_meta_records_inputs_and_a_rerun_reuses_features(kit, data_dir, targets, tmp_path):
    assert run_e2(kit, data_dir, targets, tmp_path).returncode == 0
    tdir = tmp_path / 'e2_dbd'
    meta = json.loads((tdir / 'features.meta.json').read_text())
    assert meta['db_preset'] == 'reduced_dbs' and meta['sequence_length'] == 82
    assert len(meta['sequence_sha256']) == 64
    assert 'uniref90/uniref90.fasta' in meta['databases']
    assert meta['tools']['jackhmmer'].startswith('3.')
    timings = json.loads((tdir / 'timings.json').read_text())
    for key in ('search_uniref90', 'search_mgnify', 'search_small_bfd', 'search_pdb70', 'features'):
        assert timings[key] > 0
    mtime = os.stat(tdir / 'features.pkl').st_mtime_ns
    res = run_e2(kit, data_dir, targets, tmp_path)
    assert res.returncode == 0 and 'reusing it' in res.stdout
    assert os.stat(tdir / 'features.pkl').st_mtime_ns == mtime


def test_mismatched_inputs_are_refused_then_overwritten(kit, data_dir, targets, tmp_path):
    assert run_e2(kit, data_dir, targets, tmp_path).returncode == 0
    res = run_e2(kit, data_dir, targets, tmp_path, '--max-template-date', '1990-01-01')
    assert res.returncode == 6
    assert 'max_template_date' in res.stdout and '--overwrite' in res.stdout
    res = run_e2(kit, data_dir, targets, tmp_path, '--max-template-date', '1990-01-01', '--overwrite')
    assert res.returncode == 0, res.stdout
    import pickle
    with open(tmp_path / 'e2_dbd' / 'features.pkl', 'rb') as f:
        # 1A7G was released in 1999: the date cut-off now excludes it.
        assert b'1a7g_E' not in list(pickle.load(f)['template_domain_names'])


def test_changed_sequence_under_same_name_is_refused(kit, data_dir, targets, tmp_path):
    fasta = tmp_path / 'e2_dbd.fasta'
    fasta.write_text(open(targets['e2_dbd']).read())
    args = ('msa', '--fasta', fasta, '--output-dir', tmp_path / 'out', '--data-dir', data_dir,
            '--db-preset', 'reduced_dbs')
    assert kit(*args).returncode == 0
    fasta.write_text('>e2_dbd\nATTPIIHLKGDANILKCLRYRLSKYKQLYEQVSS\n')
    res = kit(*args)
    assert res.returncode == 6 and 'sequence_sha256' in res.stdout


def test_alphafold_underscore_flags_and_slurm_cpus(kit, data_dir, targets, tmp_path):
    res = kit('msa', '--fasta_paths=%s,%s' % (targets['e2_dbd'], targets['hbb_human']),
              '--output_dir', tmp_path, '--data_dir', data_dir, '--db_preset', 'reduced_dbs',
              '--max_template_date', '2020-05-14', env={'SLURM_CPUS_PER_TASK': '3'})
    assert res.returncode == 0, res.stdout
    assert 'on 3 cpu' in res.stdout
    assert (tmp_path / 'e2_dbd' / 'features.pkl').exists()
    assert (tmp_path / 'hbb_human' / 'features.pkl').exists()


def test_cpu_stage_imports_no_model_code(data_dir, targets, tmp_path):
    """No model code, and no XLA backend started (jax itself is imported by DeepMind's own
    residue constants from a4315dd on)."""
    code = ('import sys; from fold_runtime import cli, options; '
            'from fold_runtime.gpu_stage.memory import backend_started; '
            'cli.run_msa(options.cpu_stage_parser().parse_args(sys.argv[1:])); '
            'bad = [m for m in ("haiku", "tensorflow", "alphafold.model") if m in sys.modules]; '
            'bad += ["an XLA backend"] if backend_started() else []; '
            'print("model modules:", bad); sys.exit(1 if bad else 0)')
    res = subprocess.run([sys.executable, '-c', code, '--fasta', targets['e2_dbd'], '--output-dir',
                          str(tmp_path), '--data-dir', data_dir], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode == 0, res.stdout
    assert 'model modules: []' in res.stdout




def test_heartbeat_lines_name_each_running_search(kit, data_dir, targets, tmp_path):
    """hbb_human (the query with the most homologs) on one CPU: the searches outlast a 0.2 s
    heartbeat, and each line names the running searches, their tools and elapsed times."""
    res = kit('msa', '--fasta', targets['hbb_human'], '--output-dir', tmp_path, '--data-dir', data_dir,
              '--cpus', '1', '--progress-interval', '0.2')
    assert res.returncode == 0, res.stdout
    beats = [l for l in res.stdout.splitlines() if '... still running: searches ' in l]
    assert len(beats) >= 2, res.stdout
    assert any('bfd_uniref30 (hhblits, ' in l for l in beats), beats
    assert all(l.rstrip().endswith('so far') for l in beats) and '\r' not in res.stdout
    res = kit('msa', '--fasta', targets['hbb_human'], '--output-dir', tmp_path, '--data-dir', data_dir,
              '--progress-interval', '0')
    assert res.returncode == 2 and 'progress_interval must be a positive number of seconds' in res.stdout


def load_features(tdir):
    import pickle
    with open(tdir / 'features.pkl', 'rb') as f:
        return pickle.load(f)


def test_no_templates_skips_the_template_search_and_is_an_input_of_the_features(kit, data_dir, targets, tmp_path):
    """e2_dbd has real templates: with --no-templates no hhsearch runs, the template
    features are AlphaFold's for no hits, and features of the other kind are never reused."""
    from fold_runtime import compat
    res = run_e2(kit, data_dir, targets, tmp_path, '--no-templates')
    assert res.returncode == 0, res.stdout
    tdir = tmp_path / 'e2_dbd'
    assert 'pdb70' not in res.stdout and 'no templates' in res.stdout
    assert not (tdir / 'msas' / 'pdb_hits.hhr').exists()
    timings = json.loads((tdir / 'timings.json').read_text())
    assert 'search_pdb70' not in timings and timings['search_uniref90'] > 0
    assert json.loads((tdir / 'features.meta.json').read_text())['no_templates'] is True
    feats = load_features(tdir)
    empty = compat.empty_template_features('')
    for name in empty:
        assert feats[name].shape == (0,) and feats[name].dtype == empty[name].dtype, name
    res = run_e2(kit, data_dir, targets, tmp_path)                    # with templates: not these features
    assert res.returncode == 6 and 'no_templates: existing True, now None' in res.stdout, res.stdout
    res = run_e2(kit, data_dir, targets, tmp_path, '--overwrite')
    assert res.returncode == 0 and 'pdb70' in res.stdout, res.stdout
    assert load_features(tdir)['template_domain_names'].shape[0] >= 1
    assert json.loads((tdir / 'timings.json').read_text())['search_pdb70'] > 0
    res = run_e2(kit, data_dir, targets, tmp_path, '--no-templates')  # and the other way round
    assert res.returncode == 6 and 'no_templates: existing None, now True' in res.stdout, res.stdout


def test_precomputed_msa_replaces_the_msa_searches(kit, data_dir, targets, tmp_path):
    """The A3M that the kit's own HHblits search made for hbb_human, given with --msa: the only
    MSA of the features, hhsearch's input, recorded by its SHA-256; bad files are refused before
    any search."""
    import hashlib
    import shutil
    from fold_runtime import compat
    args = ('msa', '--fasta', targets['hbb_human'], '--data-dir', data_dir)
    assert kit(*args, '--output-dir', tmp_path / 'searched').returncode == 0
    a3m = tmp_path / 'hbb_human.a3m'
    shutil.copy(str(tmp_path / 'searched' / 'hbb_human' / 'msas' / 'bfd_uniref_hits.a3m'), str(a3m))
    out = tmp_path / 'given'
    res = kit(*args, '--output-dir', out, '--msa', a3m)
    assert res.returncode == 0, res.stdout
    tdir = out / 'hbb_human'
    assert 'MSA from %s instead of the MSA searches' % a3m in res.stdout
    assert sorted(os.listdir(tdir / 'msas')) == ['pdb_hits.hhr', 'user_msa.a3m']
    assert sorted(k for k in json.loads((tdir / 'timings.json').read_text()) if k.startswith('search_')) == \
        ['search_pdb70']
    assert json.loads((tdir / 'features.meta.json').read_text())['msa_sha256'] == \
        hashlib.sha256(a3m.read_bytes()).hexdigest()
    rows = a3m.read_text().count('>')
    assert rows > 20                                   # a real MSA, not just the query
    hhr = (tdir / 'msas' / 'pdb_hits.hhr').read_text()
    assert 'No_of_seqs    %d out of %d' % (rows, rows) in hhr     # hhsearch searched with the given MSA
    feats = load_features(tdir)
    expected = compat.msa_features((compat.read_a3m(str(a3m)),))
    for name in ('msa', 'deletion_matrix_int', 'num_alignments'):
        assert (feats[name] == expected[name]).all(), name
    searched = load_features(tmp_path / 'searched' / 'hbb_human')
    assert feats['num_alignments'][0] < searched['num_alignments'][0]   # UniRef90 and MGnify hits left out

    assert kit(*args, '--output-dir', out).returncode == 6            # searched features are other inputs
    a3m.write_text(a3m.read_text().rsplit('>', 1)[0])                 # one row fewer: another MSA
    res = kit(*args, '--output-dir', out, '--msa', a3m)
    assert res.returncode == 6 and 'msa_sha256' in res.stdout, res.stdout

    bad = tmp_path / 'bad.a3m'
    for text, words in (('hello\nworld\n', 'is not an A3M file: it does not start with a ">name" line'),
                        ('>q\n%s\n>hit\nMVHL\n' % sequence_of(targets['hbb_human']),
                         "row(s) (first: 'hit') do not have the query's 146 match columns"),
                        ('>q\n%s\n' % sequence_of(targets['e2_dbd']), 'not with the sequence of target hbb_human')):
        bad.write_text(text)
        res = kit(*args, '--output-dir', tmp_path / 'bad', '--msa', bad)
        assert res.returncode == 2 and words in res.stdout and 'Traceback' not in res.stdout, res.stdout
        assert not (tmp_path / 'bad').exists()           # refused before any directory or search
    res = kit('msa', '--fasta', targets['hbb_human'], targets['e2_dbd'], '--data-dir', data_dir,
              '--output-dir', tmp_path / 'bad', '--msa', a3m)
    assert res.returncode == 2 and '--msa gives 1 file(s) for 2 target(s)' in res.stdout, res.stdout


def sequence_of(path):
    with open(path) as f:
        return ''.join(l.strip() for l in f if not l.startswith('>'))
