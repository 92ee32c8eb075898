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
    code = ('import sys; from fold_runtime import cli, options; '
            'cli.run_msa(options.cpu_stage_parser().parse_args(sys.argv[1:])); '
            'bad = [m for m in ("jax", "haiku", "tensorflow", "alphafold.model") if m in sys.modules]; '
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
