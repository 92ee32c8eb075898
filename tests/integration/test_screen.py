"""alphafold-batch screen: a 2 x 3 pull-down of real test sequences, its chains searched once each
(the multimer CPU stage, locks and the chain cache), then every complex predicted with STAND-IN
random multimer weights on the CPU, on the local executor and on the real one-node Slurm cluster
(tests/slurm_cluster.py; its GPUs are STAND-INs: GRES on /dev/tty*)."""
import csv
import json
import os

from conftest import run_kit

# One model, one prediction, no recycling, no relaxation: the screen machinery is under test
# (test_predict_multimer.py predicts with recycling).
SCREEN_GPU = ('--models', 'model_1_multimer_v3', '--num-multimer-predictions-per-model', '1', '--num-recycle', '0',
              '--models-to-relax', 'none', '--no-result-pkl', '--db-preset', 'reduced_dbs', '--no-progress')
PAIRS = ['%s__%s' % (b, c) for b in ('cono', 'hbb24') for c in ('e2a', 'e2b', 'hbb60')]
SLURM_PAIRS = ['cono__e2a', 'cono__e2b']     # the local test screens all six; Slurm needs only its own path


def sequence(path):
    with open(path) as f:
        return ''.join(l.strip() for l in f if not l.startswith('>'))


def screen_lists(targets, tmp_path, pairs=PAIRS):
    """Baits of 24 and candidates of 30 residues (real sequences and pieces of them): every
    complex has 54, so one compiled model serves all of them."""
    cono, hbb, e2 = (sequence(targets[n]) for n in ('conotoxin', 'hbb_human', 'e2_dbd'))
    records = {'cono': ('cono conotoxin PIIIE', cono), 'hbb24': ('hbb24 HBB_HUMAN 1-24', hbb[:24]),
               'e2a': ('e2a', e2[:30]), 'e2b': ('e2b', e2[30:60]), 'hbb60': ('hbb60', hbb[60:90])}
    paths = []
    for side, name in ((0, 'baits'), (1, 'candidates')):
        names = sorted({p.split('__')[side] for p in pairs}, key=list(records).index)
        path = tmp_path / ('%s.fasta' % (names[0] if len(names) == 1 else name))   # one record: named by its file
        path.write_text(''.join('>%s\n%s\n' % records[n] for n in names))
        paths.append(str(path))
    return paths


def check_screen(out, pairs=PAIRS):
    """Every complex predicted with two chains; each unique chain searched by exactly one CPU task
    (the other complexes took it from the chain cache); summary.csv by ipTM."""
    res = run_kit('batch', 'status', out, '--json')
    rows = json.loads(res.stdout[res.stdout.index('['):])
    assert sorted(r['name'] for r in rows) == pairs and {r['stage'] for r in rows} == {'done'}, res.stdout
    unique_chains = {c for p in pairs for c in p.split('__')}
    searched = []
    for name in pairs:
        chains = json.load(open(os.path.join(out, name, 'features.meta.json')))['chains']
        assert [c['length'] for c in chains] == [24, 30]
        searched += [c['sequence_sha256'] for c in chains if c['features_source'] == 'cpu_stage']
        timings = json.load(open(os.path.join(out, name, 'timings.json')))
        assert {k.split(':')[0] for k in timings if k.startswith('search_')} <= {'search_A', 'search_B'}
        with open(os.path.join(out, name, 'ranked_0.pdb')) as f:
            assert len({l[21] for l in f if l.startswith('ATOM')}) == 2, name
    assert len(searched) == len(set(searched)) == len(unique_chains), searched
    assert run_kit('batch', 'report', out).returncode == 0
    assert json.load(open(os.path.join(out, 'report.json')))['chain_searches'] == len(unique_chains)
    with open(os.path.join(out, 'summary.csv')) as f:
        iptm = [float(r['iptm']) for r in csv.DictReader(f)]
    assert len(iptm) == len(pairs) and iptm == sorted(iptm, reverse=True)


def test_pulldown_screen_on_the_local_executor(multimer_data_dir, targets, tmp_path):
    """Two CPU tasks at a time, so complexes that share a bait search concurrently: the locks make
    one task search it while the other searches its candidate and then waits for the bait's entry."""
    baits, candidates = screen_lists(targets, tmp_path)
    out = str(tmp_path / 'out')
    res = run_kit('batch', 'screen', '--mode', 'pulldown', '--baits', baits, '--candidates', candidates,
                  '--output-dir', out, '--data-dir', multimer_data_dir, '--cpus', '2', '--cpus-per-task', '1',
                  *SCREEN_GPU, timeout=1500)
    assert res.returncode == 0, res.stdout
    assert '6 targets, 6 unique inputs' in res.stdout
    check_screen(out)
    with open(os.path.join(out, '.batch', 'screen', 'cono__hbb60.fasta')) as f:
        assert f.read().split('\n')[::2] == ['>cono conotoxin PIIIE', '>hbb60', '']


def test_pulldown_screen_on_slurm(slurm, multimer_data_dir, targets, tmp_path):
    conf = tmp_path / 'site.conf'
    conf.write_text('[slurm]\ncpu_partition = cpu\ngpu_partition = gpu\ncpus_per_task = 1\ngpu_cpus_per_task = 1\n'
                    'cpu_mem = 500M\ngpu_mem = 2000M\ncpu_time = 30:00\ngpu_time = 30:00\ngpu_workers = 1\n')
    env = {'SLURM_CONF': slurm.conf, 'ALPHAFOLD_SITE_CONFIG': str(conf)}
    baits, candidates = screen_lists(targets, tmp_path, SLURM_PAIRS)
    out = str(tmp_path / 'out')
    res = run_kit('batch', 'screen', '--mode', 'pulldown', '--baits', baits, '--candidates', candidates,
                  '--output-dir', out, '--data-dir', multimer_data_dir, '--executor', 'slurm', '--wait', *SCREEN_GPU,
                  env=env, timeout=1500)
    assert res.returncode == 0, res.stdout
    job = json.load(open(os.path.join(out, '.batch', 'jobs.json')))[-1]
    assert sorted(job['msa_targets']) == SLURM_PAIRS                # one CPU array task per complex
    assert slurm.field(job['msa_job'], 'JobName') == 'alphafold-msa'
    check_screen(out, SLURM_PAIRS)


def test_multimer_batch_mixes_complexes_and_single_chains(multimer_data_dir, targets, tmp_path):
    """ColabFold's notation in a batch: a ':'-joined record is a complex, a plain record a one-chain
    target; both go through the multimer CPU and GPU stages, and the complex's chain that the
    single chain repeats is searched once."""
    cono, e2 = sequence(targets['conotoxin']), sequence(targets['e2_dbd'])
    fasta = tmp_path / 'mixed.fasta'
    fasta.write_text('>pair\n%s:%s\n>single\n%s\n' % (cono, e2[:30], cono))
    out = str(tmp_path / 'out')
    res = run_kit('batch', 'submit', '--model-preset', 'multimer', '--fasta', fasta, '--output-dir', out,
                  '--data-dir', multimer_data_dir, '--cpus', '1', *SCREEN_GPU, timeout=1500)
    assert res.returncode == 0, res.stdout
    metas = {n: json.load(open(os.path.join(out, n, 'features.meta.json'))) for n in ('pair', 'single')}
    assert [c['length'] for c in metas['pair']['chains']] == [24, 30]
    assert [c['length'] for c in metas['single']['chains']] == [24]
    sources = [c['features_source'] for m in metas.values() for c in m['chains']]
    assert sorted(sources) == ['cache', 'cpu_stage', 'cpu_stage'], sources   # the conotoxin searched once
    assert not [k for k in json.load(open(os.path.join(out, 'single', 'timings.json'))) if k.startswith('search_')]
    for name, n_chains in (('pair', 2), ('single', 1)):
        with open(os.path.join(out, name, 'ranked_0.pdb')) as f:
            assert len({l[21] for l in f if l.startswith('ATOM')}) == n_chains, name
        scores = json.load(open(os.path.join(out, name, 'scores.json')))
        assert 0 <= scores['models'][scores['order'][0]]['ranking_confidence'] <= 1, scores
