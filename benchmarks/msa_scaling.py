#!/usr/bin/env python3
"""MSA search scaling (#25): DeepMind's jackhmmer against ColabFold's MMseqs2 search, same queries,
same databases, one run, at growing database sizes.

Databases are made reproducibly (seeded): real proteins from the test databases (UniProt and
UniRef90 records, 60-500 residues) are the queries; for each query, homologs are planted at known
identities (20-90%, substitutions at random positions); the rest are the real proteins shuffled
(their lengths and composition, no homology). jackhmmer runs as DeepMind's UniRef90 search does
(AlphaFold's Jackhmmer wrapper, its flags, one iteration) on the FASTA; MMseqs2 runs the kit's
--msa-mode mmseqs2 search (ColabFold 1.6.2's colabfold_search commands) on the same sequences in
ColabFold's database layout (clustered at 30% by linclust, indexed by createindex as ColabFold's
setup_databases.sh does), with that database as both UniRef30 and the environmental database (so
MMseqs2 does twice the searching: its figures are an upper bound). HHblits runs as DeepMind's
BFD/UniRef30 search does (AlphaFold's HHBlits wrapper, its flags: 3 iterations) on the same
sequences as an HH-suite database of one-sequence entries (A3M and cs219 parts; hhblits makes
each entry's HMM from its A3M when there is no _hhm part): real clusters need an MSA and an HMM
per cluster, so HHblits searches the sequences themselves, as jackhmmer does, with one entry per
sequence where UniRef30 has one per cluster of about 8. Even so its database is costly: cstranslate
(HH-suite's step for the cs219 part, -x 0.3 -c 4 as HH-suite documents) takes about 0.1 CPU s per
entry here, a CPU hour per 36,000 sequences, so HHblits is measured only at sizes up to
--hhblits-up-to (the time its database took is printed).

Per size it prints wall and CPU seconds per query (jackhmmer, HHblits and MMseqs2 one query at a
time, and MMseqs2 on a batch of --batch queries in one run), the ratios, the planted homologs found per
identity bin, MSA depth and Neff (80% identity), and at the end a least-squares line of seconds per
query against database size, projected to UniRef90's (the registry's unpacked size).

  .venv/bin/python benchmarks/msa_scaling.py --sizes 100000 1000000 5000000
"""
import argparse
import os
import random
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from alphafold.data import parsers  # noqa: E402
from alphafold.data.tools import hhblits, jackhmmer  # noqa: E402

from benchmarks.cpu_stage import test_data  # noqa: E402
from build_test_dbs import build_colabfold_db_from_fasta, make_cs219, mmseqs  # noqa: E402
from data_sync.registry import DATABASES  # noqa: E402
from fold_runtime import compat  # noqa: E402
from fold_runtime.cpu_stage import binaries, colabfold_search  # noqa: E402

AMINO_ACIDS = 'ACDEFGHIKLMNPQRSTVWY'
IDENTITIES = (20, 30, 40, 50, 60, 70, 80, 90)
LABELS = (('jackhmmer (DeepMind flags)', 'jackhmmer'), ('HHblits (DeepMind flags)', 'hhblits'),
          ('MMseqs2, one query', 'mmseqs2'), ('MMseqs2, batch of {batch}', 'batch'))


def read_fasta(path):
    """(name, sequence) of each record, one at a time (the databases hold millions)."""
    name, seq = None, []
    with open(path) as f:
        for line in f:
            if line.startswith('>'):
                if name:
                    yield name, ''.join(seq)
                name, seq = line[1:].split()[0], []
            elif name:
                seq.append(line.strip())
    if name:
        yield name, ''.join(seq)


def real_proteins(data_dir):
    """Distinct real proteins of 60-500 residues, in file order."""
    seen, out = set(), []
    for path in ('uniprot/uniprot.fasta', 'uniref90/uniref90.fasta'):
        for _, seq in read_fasta(os.path.join(data_dir, path)):
            if 60 <= len(seq) <= 500 and set(seq) <= set(AMINO_ACIDS) and seq not in seen:
                seen.add(seq)
                out.append(seq)
    return out


def planted(query, identity, rng):
    """query with round(len * (1 - identity)) positions substituted by another residue."""
    seq = list(query)
    for i in rng.sample(range(len(seq)), round(len(seq) * (100 - identity) / 100)):
        seq[i] = rng.choice(AMINO_ACIDS.replace(seq[i], ''))
    return ''.join(seq)


def make_database(path, proteins, queries, size, per_bin, seed=25):
    """FASTA of `size` records: per_bin planted homologs per query and identity, then background
    sequences with the real proteins' lengths and overall composition (drawn with numpy: millions
    of records in seconds). Returns {planted name: identity}."""
    rng = random.Random(seed)
    plants = {}
    with open(path, 'w') as out:
        for q, query in enumerate(queries):
            for identity in IDENTITIES:
                for k in range(per_bin):
                    name = 'plant_q%d_id%d_k%d' % (q, identity, k)
                    plants[name] = identity
                    out.write('>%s\n%s\n' % (name, planted(query, identity, rng)))
    with open(path, 'ab') as out:
        write_background(out, proteins, size - len(plants), np.random.default_rng(seed))
    return plants


def write_background(out, proteins, count, rng, chunk=100000):
    text = ''.join(proteins).encode()
    letters, counts = np.unique(np.frombuffer(text, dtype=np.uint8), return_counts=True)
    lengths = np.array([len(p) for p in proteins])
    for first in range(0, count, chunk):
        sizes = lengths[rng.integers(0, len(lengths), min(chunk, count - first))]
        residues = rng.choice(letters, size=int(sizes.sum()), p=counts / counts.sum()).tobytes()
        ends = np.cumsum(sizes)
        out.write(b''.join(b'>bg%d\n%s\n' % (first + i, residues[end - n:end])
                           for i, (n, end) in enumerate(zip(sizes, ends))))


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(func):
    """(wall seconds, CPU seconds of child processes, result)."""
    wall, cpu = time.time(), children_cpu()
    result = func()
    return time.time() - wall, children_cpu() - cpu, result


def neff(rows):
    """Effective number of sequences at 80% identity over the query's columns (each row weighted by
    1 / the rows within 80% of it)."""
    if not rows:
        return 0.0
    codes = np.array([[ord(c) for c in r] for r in rows], dtype=np.int16)
    weights = np.zeros(len(rows))
    for start in range(0, len(rows), 64):
        same = (codes[start:start + 64, None, :] == codes[None, :, :]).mean(axis=2)
        weights[start:start + 64] = 1.0 / (same >= 0.8).sum(axis=1)
    return float(weights.sum())


def msa_stats(msa, plants, query_index):
    """Planted homologs of this query found per identity, depth and Neff of a parsed MSA, each
    database sequence counted once (MMseqs2 finds it in both of its databases, jackhmmer may align
    several of its domains)."""
    rows = {}
    for description, row in zip(msa.descriptions, msa.sequences):
        rows.setdefault(description.split()[0].split('/')[0], row)
    prefix = 'plant_q%d_' % query_index
    found = {i: 0 for i in IDENTITIES}
    for name in rows:
        if name.startswith(prefix):
            found[plants[name]] += 1
    return found, len(rows), neff(list(rows.values()))


def run_jackhmmer(binary, db, query, cpus, work):
    path = os.path.join(work, 'query.fasta')
    with open(path, 'w') as f:
        f.write('>query\n%s\n' % query)
    runner = jackhmmer.Jackhmmer(binary_path=binary, database_path=db, n_cpu=cpus)
    return parsers.parse_stockholm(compat.jackhmmer_sto(runner, path, compat.UNIREF_MAX_HITS))


def build_mmseqs_db(fasta, work):
    prefix = os.path.join(work, 'colabfold', 'db')
    build_colabfold_db_from_fasta(prefix, fasta, work, clustering='linclust')
    mmseqs('createindex', prefix, os.path.join(work, 'index_tmp'), '--remove-tmp-files', '1', '--threads', '2')
    return prefix


def build_hhblits_db(fasta, work):
    """The FASTA as an HH-suite database of one-sequence A3M entries (ffindex: the entries, each
    ending in a NUL, and their index sorted by name), with the cs219 part made as for the test BFD."""
    prefix = os.path.join(work, 'hhsuite', 'db')
    os.makedirs(os.path.dirname(prefix))
    index, offset = [], 0
    with open(prefix + '_a3m.ffdata', 'wb') as data:
        for name, seq in read_fasta(fasta):
            entry = b'>%s\n%s\n\0' % (name.encode(), seq.encode())
            data.write(entry)
            index.append((name.encode(), offset, len(entry)))
            offset += len(entry)
    index.sort()
    with open(prefix + '_a3m.ffindex', 'wb') as f:
        f.writelines(b'%s\t%d\t%d\n' % entry for entry in index)
    make_cs219(prefix)
    return prefix


def run_hhblits(binary, prefix, query, cpus, work):
    path = os.path.join(work, 'query.fasta')
    with open(path, 'w') as f:
        f.write('>query\n%s\n' % query)
    runner = hhblits.HHBlits(binary_path=binary, databases=[prefix], n_cpu=cpus)
    return parsers.parse_a3m(runner.query(path)[0]['a3m'])


def run_mmseqs(binary, prefix, queries, cpus, work):
    a3ms = colabfold_search.a3ms(binary, queries, prefix, prefix, work, cpus)
    return [parsers.parse_a3m(text) for text in a3ms]


def one_size(size, proteins, queries, args, work):
    fasta = os.path.join(work, 'db.fasta')
    plants = make_database(fasta, proteins, queries, size, args.per_bin)
    gb = os.path.getsize(fasta) / 1e9
    prefix = build_mmseqs_db(fasta, work)
    row = {'size': size, 'gb': gb, 'found': {}, 'depth': {}}
    hh_prefix = None
    if size <= args.hhblits_up_to:
        row['hhblits_db'] = measured(lambda: build_hhblits_db(fasta, work))
        hh_prefix = row['hhblits_db'][2]
    singles = queries[:args.queries]
    for q, query in enumerate(singles):
        searches = (('jackhmmer', lambda: run_jackhmmer(shutil.which('jackhmmer'), fasta, query, args.cpus, work)),
                    ('hhblits', lambda: run_hhblits(shutil.which('hhblits'), hh_prefix, query, args.cpus, work)),
                    ('mmseqs2', lambda: run_mmseqs(args.mmseqs, prefix, [query], args.cpus,
                                                   os.path.join(work, 'mm-%d' % q))[0]))
        for method, search in [(m, search) for m, search in searches if hh_prefix or m != 'hhblits']:
            wall, cpu, msa = measured(search)
            total = row.setdefault(method, [0.0, 0.0])
            row[method] = [total[0] + wall / len(singles), total[1] + cpu / len(singles)]
            add_stats(row, method, msa_stats(msa, plants, q))
    batch = queries[:args.batch]
    wall, cpu, msas = measured(lambda: run_mmseqs(args.mmseqs, prefix, batch, args.cpus, os.path.join(work, 'batch')))
    row['batch'] = [wall / len(batch), cpu / len(batch)]
    for q, msa in enumerate(msas):
        add_stats(row, 'mmseqs2 batch', msa_stats(msa, plants, q))
    row['planted_per_bin'] = {'jackhmmer': args.per_bin * len(singles), 'hhblits': args.per_bin * len(singles),
                              'mmseqs2': args.per_bin * len(singles), 'mmseqs2 batch': args.per_bin * len(batch)}
    return row


def add_stats(row, method, stats):
    found, depth, n_eff = stats
    total = row['found'].setdefault(method, {i: 0 for i in IDENTITIES})
    for identity, n in found.items():
        total[identity] += n
    row['depth'].setdefault(method, []).append((depth, n_eff))


def report(row):
    jw, jc = row['jackhmmer']
    print('\n%d sequences (%.3f GB of FASTA)' % (row['size'], row['gb']))
    if 'hhblits_db' in row:
        print('  HHblits database made in %.0f s wall, %.0f CPU s' % row['hhblits_db'][:2])
    print('  %-28s %10s %10s %10s' % ('per query', 'wall s', 'CPU s', 'jackhmmer/x'))
    for label, key in LABELS:
        if key not in row:
            print('  %-28s %10s   (its database is not built at this size: --hhblits-up-to)' % (label, '-'))
            continue
        wall, cpu = row[key]
        print('  %-28s %10.2f %10.2f %9.2fx' % (label.format(batch=batch_size(row)), wall, cpu, jw / wall))
    print('  planted homologs found, per identity %:   ' + ' '.join('%5d' % i for i in IDENTITIES))
    for method, found in row['found'].items():
        total = row['planted_per_bin'][method]
        print('  %-40s %s' % (method, ' '.join('%5.0f' % (100.0 * found[i] / total) for i in IDENTITIES)))
    above = [i for i in IDENTITIES if i > 30]
    jack = sum(row['found']['jackhmmer'][i] for i in above)
    for method in [m for m in ('hhblits', 'mmseqs2') if m in row['found']]:
        print('  %-7s recall above 30%% identity: %.0f%% of jackhmmer\'s' % (
            method, 100.0 * sum(row['found'][method][i] for i in above) / max(jack, 1)))
    for method, values in row['depth'].items():
        print('  %-28s depth %7.1f  Neff %7.1f (mean per query)' % (
            method, np.mean([v[0] for v in values]), np.mean([v[1] for v in values])))


def projection(rows):
    """Seconds per query = a + b * GB, least squares, at UniRef90's unpacked size."""
    target = DATABASES['2.3']['uniref90'].unpacked_bytes / 1e9
    gbs = np.array([r['gb'] for r in rows])
    print('\nprojected to UniRef90 (%.0f GB), least squares over the sizes above:' % target)
    for label, key in LABELS:
        measured_at = [i for i, r in enumerate(rows) if key in r]
        if not measured_at:
            continue
        seconds = np.array([rows[i][key][0] for i in measured_at])
        at = gbs[measured_at]
        slope, intercept = np.polyfit(at, seconds, 1) if len(at) > 1 else (seconds[0] / at[0], 0.0)
        print('  %-28s %10.0f s per query   (%.3g s + %.3g s/GB)' % (label.format(batch=batch_size(rows[0])),
                                                          intercept + slope * target, intercept, slope))


def batch_size(row):
    return len(row['depth']['mmseqs2 batch'])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', type=int, nargs='+', default=[100000, 1000000, 5000000],
                    help='database sizes in sequences (default: %(default)s)')
    ap.add_argument('--queries', type=int, default=3, help='queries searched one at a time (default: %(default)s)')
    ap.add_argument('--hhblits-up-to', type=int, default=30000,
                    help='the largest size at which HHblits is measured (default: %(default)s)')
    ap.add_argument('--batch', type=int, default=100, help='queries in the MMseqs2 batch (default: %(default)s)')
    ap.add_argument('--per-bin', type=int, default=2, help='homologs planted per query and identity')
    ap.add_argument('--cpus', type=int, default=2)
    ap.add_argument('--mmseqs', default=shutil.which('mmseqs') or 'mmseqs')
    ap.add_argument('--work', help='a directory with room for the largest database (default: a temporary one)')
    args = ap.parse_args()
    log = os.path.join(args.work or tempfile.gettempdir(), 'msa_scaling.log')
    print('the tools\' own output: %s' % log)
    sys.stdout.flush()
    with open(log, 'w') as f:
        os.dup2(f.fileno(), 2)
    data_dir = test_data()[0]
    proteins = real_proteins(data_dir)
    queries = proteins[:max(args.batch, args.queries)]
    print('HMMER %s, MMseqs2 %s, --cpus %d, %d real proteins (queries and shuffled background)' % (
        binaries.version(shutil.which('jackhmmer')), binaries.version(args.mmseqs), args.cpus, len(proteins)))
    rows = []
    for size in args.sizes:
        work = tempfile.mkdtemp(prefix='msa-scaling-', dir=args.work)
        try:
            rows.append(one_size(size, proteins, queries, args, work))
        finally:
            shutil.rmtree(work)
        report(rows[-1])
    projection(rows)


if __name__ == '__main__':
    main()
