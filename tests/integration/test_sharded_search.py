"""Sharded jackhmmer and hmmsearch searches (#26): features equal, array for array, to DeepMind's
unsharded pipelines (monomer, both presets, and multimer), on test databases made to hold what
sharding could get wrong. Each shard count's version is made once per module."""
import os
import pickle
import random
import shutil

import pytest
from alphafold.data.tools import jackhmmer

from conftest import run_data as data
from stock_alphafold import stock_features, stock_multimer_features
from test_msa_parity import assert_same_features, comparable

SHARDED = 'uniref90,mgnify,small_bfd'
# Every database of both presets and of the multimer pipeline.
SUBSET = SHARDED + ',uniprot,pdb_seqres,bfd,uniref30,pdb70,pdb_mmcif'
FASTAS = {'uniref90': 'uniref90/uniref90.fasta', 'mgnify': 'mgnify/mgy_clusters_2022_05.fa',
          'small_bfd': 'small_bfd/bfd-first_non_consensus_sequences.fasta', 'uniprot': 'uniprot/uniprot.fasta'}
# The databases each preset searches with jackhmmer.
JACKHMMER = {'reduced_dbs': SHARDED.split(','), 'full_dbs': ['uniref90', 'mgnify']}
AMINO_ACIDS = 'ACDEFGHIKLMNPQRSTVWY'
VARIANTS = 30
TARGETS = ('hbb_human', 'conotoxin')


def read_fasta(path):
    """[(header, sequence)], the header without '>'."""
    records = []
    with open(path) as f:
        for line in f:
            if line.startswith('>'):
                records.append((line[1:].rstrip('\n'), []))
            else:
                records[-1][1].append(line.strip())
    return [(header, ''.join(lines)) for header, lines in records]


def write_fasta(path, records):
    path.write_text(''.join('>%s\n%s\n' % r for r in records))


def with_hard_cases(records, rng):
    """records, and for each: VARIANTS copies mutated at rising rates (E-values on both sides of
    the inclusion threshold, where -Z decides, and for the globins of MGnify more hits than its
    cap of 501); a copy followed by a weakened copy (a second domain near --incdomE, where --domZ
    decides); the same sequence under a name that sorts first and one that sorts last (ties in
    score, ranked by name). Shuffled, so that every shard gets some of each."""
    def mutated(seq, rate):
        return ''.join(rng.choice(AMINO_ACIDS) if rng.random() < rate else c for c in seq)
    extra = []
    for i, (_, seq) in enumerate(records):
        extra += [('V%d_%d' % (i, j), mutated(seq, 0.05 + 0.7 * j / (VARIANTS - 1))) for j in range(VARIANTS)]
        extra.append(('T%d' % i, seq + ''.join(rng.choice(AMINO_ACIDS) for _ in range(30)) + mutated(seq, 0.6)))
        extra += [('AA%d' % i, seq), ('ZZ%d' % i, seq)]
    rng.shuffle(extra)
    return records + extra


@pytest.fixture(scope='module')
def hard_tree(data_dir, tmp_path_factory):
    """A data tree whose jackhmmer databases have the hard cases."""
    tree = tmp_path_factory.mktemp('hard') / 'tree'
    for name in SUBSET.split(','):
        shutil.copytree(os.path.join(data_dir, name), str(tree / name))
    rng = random.Random(26)
    for rel in FASTAS.values():
        records = with_hard_cases(read_fasta(str(tree / rel)), rng)
        write_fasta(tree / rel, records)
    return tree


@pytest.fixture(scope='module')
def stock_runs(hard_tree, targets, tmp_path_factory):
    """DeepMind's unsharded pipeline on the hard databases, once per preset: preset -> name ->
    (features, its msas/ directory), for the globin (many hits) and the conotoxin (none in MGnify)."""
    runs = {}

    def run(preset):
        if preset not in runs:
            runs[preset] = {}
            for name in TARGETS:
                msas = tmp_path_factory.mktemp('stock') / name
                runs[preset][name] = stock_features(str(hard_tree), preset, targets[name], str(msas)), msas
        return runs[preset]
    return run


@pytest.fixture(scope='module')
def stock(stock_runs):
    return stock_runs('reduced_dbs')


@pytest.fixture(scope='module')
def sharded_version(hard_tree, tmp_path_factory):
    """n -> a published version of the hard tree with SHARDED (and any of extra) in n shards, made
    once per module and shard count (its own shared root: the version stays as it is)."""
    made = {}

    def make(n, extra=()):
        key = (n, tuple(extra))
        if key not in made:
            root = tmp_path_factory.mktemp('sharded') / 'shared'
            res = data('publish', '--data-root', root, '--from', hard_tree, '--preset', 'reduced_dbs',
                       '--databases', SUBSET)
            assert res.returncode == 0, res.stdout
            made[key] = shard(root, n, ','.join((SHARDED,) + tuple(extra))).resolve()
        return made[key]
    return make


@pytest.fixture
def published(hard_tree, tmp_path):
    """A shared root whose current version is the hard tree, unsharded (its own: tests corrupt it)."""
    root = tmp_path / 'shared'
    res = data('publish', '--data-root', root, '--from', hard_tree, '--preset', 'reduced_dbs', '--databases', SUBSET)
    assert res.returncode == 0, res.stdout
    return root


def shard(root, n, databases=SHARDED):
    res = data('shard', '--data-root', root, '--shards', n, '--preset', 'reduced_dbs', '--databases', databases)
    assert res.returncode == 0, res.stdout
    return root / 'current'


def rows(sto_text):
    """The row names of a Stockholm alignment: NAME/from-to per aligned domain, and the query."""
    return {l.split()[0] for l in sto_text.splitlines() if l.strip() and not l.startswith(('#', '//'))}


def deepmind_jackhmmer(query, database, z_value):
    """AlphaFold's jackhmmer on database, uncapped: its result (sto and tbl)."""
    return jackhmmer.Jackhmmer(binary_path=shutil.which('jackhmmer'), database_path=str(database), n_cpu=1,
                               z_value=z_value, get_tblout=True).query(query)[0]


def test_the_databases_hold_the_hard_cases(hard_tree, published, targets, stock, tmp_path):
    """Guards the test below: the databases hold what a sharded search could get wrong."""
    hbb, unsharded = targets['hbb_human'], rows((stock['hbb_human'][1] / 'mgnify_hits.sto').read_text())
    assert len(unsharded) == 501                                               # over MGnify's cap
    assert len(rows((stock['conotoxin'][1] / 'mgnify_hits.sto').read_text())) == 1   # no hits, the query alone
    # Without -Z a third of UniRef90 reports sequences the whole database does not.
    records = read_fasta(str(hard_tree / FASTAS['uniref90']))
    write_fasta(tmp_path / 'part.fasta', records[:len(records) // 3])

    def reported(z_value):
        tbl = deepmind_jackhmmer(hbb, tmp_path / 'part.fasta', z_value)['tbl']
        return {l.split()[0] for l in tbl.splitlines() if l[:1] != '#'}
    assert reported(None) > reported(len(records))
    # With -Z but its own --domZ, MGnify's first of 2 shards aligns a domain of a hit that the
    # whole database does not (T8's weakened copy): a merge of the shards' alignments is wrong.
    first = shard(published, 2) / (FASTAS['mgnify'] + '.shard-1-of-2')
    found = rows(deepmind_jackhmmer(hbb, first, len(read_fasta(str(hard_tree / FASTAS['mgnify']))))['sto'])
    hits = {r.split('/')[0] for r in unsharded}
    assert {r for r in found if r.split('/')[0] in hits} - unsharded


def assert_searched_in(log, names, shards):
    """The log names each search's shards (1: unsharded, no shards named)."""
    log = ' '.join(log.split())
    for name in names:
        started = '%s started: jackhmmer on %s' % (name, os.path.basename(FASTAS[name]))
        assert started + (' in %d shards' % shards if shards > 1 else ' ') in log, log
    assert shards > 1 or ' shards (' not in log


@pytest.mark.parametrize('preset, shards', [('reduced_dbs', 1), ('reduced_dbs', 2), ('reduced_dbs', 3),
                                            ('reduced_dbs', 7), ('full_dbs', 3)])
def test_sharded_search_equals_deepmind(kit, sharded_version, stock_runs, targets, tmp_path, preset, shards):
    data_dir, stock = sharded_version(shards), stock_runs(preset)
    out = tmp_path / 'ours'
    res = kit('msa', '--fasta', *[targets[t] for t in TARGETS], '--output-dir', out, '--data-dir', data_dir,
              '--db-preset', preset, '--cpus', '2')
    assert res.returncode == 0, res.stdout
    assert_searched_in(res.stdout, JACKHMMER[preset], shards)
    for target in TARGETS:
        with open(out / target / 'features.pkl', 'rb') as f:
            assert_same_features(pickle.load(f), stock[target][0])
        for fname in os.listdir(stock[target][1]):   # the msas/ files too, byte for byte
            assert comparable(out / target / 'msas' / fname) == comparable(stock[target][1] / fname), fname


@pytest.mark.parametrize('name', ['pim1_epha2', 'e2_dimer'])
def test_sharded_multimer_search_equals_deepmind(kit, sharded_version, hard_tree, targets, tmp_path, name):
    """Complexes on reduced_dbs: each chain's searches, the UniProt search for pairing (the
    heterodimer) and the template search (hmmsearch on pdb_seqres, where the E2 dimer finds 1A7G),
    sharded, give AlphaFold-Multimer's features and msas/ files."""
    data_dir = sharded_version(2, ('uniprot', 'pdb_seqres'))
    out, stock_msas = tmp_path / 'ours', tmp_path / 'stock'
    res = kit('msa', '--fasta', targets[name], '--output-dir', out, '--data-dir', data_dir, '--model_preset=multimer',
              '--db-preset', 'reduced_dbs', '--cpus', '2')
    assert res.returncode == 0, res.stdout
    log = ' '.join(res.stdout.split())
    chains = 'AB' if name == 'pim1_epha2' else 'A'   # a homomer's chain is searched once, without UniProt
    for chain in chains:
        searches = ['pdb_seqres started: hmmsearch on pdb_seqres.txt'] + \
            ['uniprot started: jackhmmer on uniprot.fasta'] * (name == 'pim1_epha2')
        for search in searches:
            assert '%s:%s in 2 shards' % (chain, search) in log, res.stdout
    with open(out / name / 'features.pkl', 'rb') as f:
        assert_same_features(pickle.load(f), stock_multimer_features(str(hard_tree), 'reduced_dbs', targets[name],
                                                                     str(stock_msas)))
    for chain in chains:
        for fname in os.listdir(stock_msas / chain):
            assert comparable(out / name / 'msas' / chain / fname) == comparable(stock_msas / chain / fname), fname
    if name == 'e2_dimer':   # the template search found something: its second pass ran
        assert '#=GS 1a7g_E' in (stock_msas / 'A' / 'pdb_hits.sto').read_text()


def test_a_shard_that_does_not_match_the_manifest_is_refused(kit, published, targets, tmp_path):
    data_dir = shard(published, 2)
    first = data_dir / (FASTAS['mgnify'] + '.shard-1-of-2')
    blob = bytearray(first.read_bytes())
    blob[-2] ^= 1                                   # one flipped bit: verify finds it
    first.unlink()                                  # (a file of this version only, not a link)
    first.write_bytes(bytes(blob))
    res = data('verify', '--data-root', published)
    assert res.returncode == 6 and 'mgy_clusters_2022_05.fa.shard-1-of-2: checksum differs' in res.stdout
    with open(str(first), 'ab') as f:               # a size that differs: the CPU stage refuses the shard
        f.write(b'>extra\nMKV\n')
    res = kit('msa', '--fasta', targets['hbb_human'], '--output-dir', tmp_path / 'out', '--data-dir', data_dir,
              '--db-preset', 'reduced_dbs')
    assert res.returncode == 6, res.stdout
    assert 'the shards of mgnify' in res.stdout and 'shard-1-of-2: size' in res.stdout, res.stdout
    assert 'alphafold-data verify' in res.stdout and 'Traceback' not in res.stdout
    assert not (tmp_path / 'out' / 'hbb_human' / 'msas' / 'mgnify_hits.sto').exists()
