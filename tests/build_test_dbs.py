#!/usr/bin/env python3
"""Build a small AlphaFold 2.3 data directory from real public data, with the real tools.

Sources (Debian packages, see debian-packages.txt):
  * hmmer-doc: HMMER's tutorial sequences and alignments (45 globins, the Pkinase and fn3 Pfam
    seed alignments, HBB_HUMAN, 7LESS_DROME);
  * python-biopython-doc: Biopython's test proteins, Swiss-Prot entries and PDB mmCIF entries (1A7G,
    2XHE carry the release dates AlphaFold's template featurizer needs).
UniProt (multimer MSA pairing) holds real UniProt records with their real headers
(sp|ACCESSION|NAME_SPECIES), so AlphaFold's msa_identifiers read their species: Biopython's
Swiss-Prot FASTA and entries, and the Pkinase and fn3 Pfam seed domains under their accessions.
Tools: hmmalign (cluster MSAs), ffindex_build, hhmake, cstranslate, hhblits (pdb70 MSAs), and
MMseqs2 for ColabFold's databases (--msa-mode mmseqs2), made in their format from the same sequences.

The result is cached under --cache, keyed by this file's content, so a test run builds it once.
It prints the data directory's path on its last line of output.
"""
import argparse
import glob
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile

from Bio import AlignIO, SeqIO
from Bio.PDB.MMCIF2Dict import MMCIF2Dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data_sync.registry import COLABFOLD   # noqa: E402  (the kit's names for ColabFold's databases)

HMMER_TUTORIAL = '/usr/share/doc/hmmer/tutorial'
BIOPYTHON_TESTS = '/usr/share/doc/python-biopython-doc/Tests'
HHSUITE_DATA = '/usr/share/hhsuite/data'
# PDB entries whose mmCIF files carry _pdbx_audit_revision_history (a release date).
TEMPLATE_ENTRIES = ('1A7G', '2XHE')
# A template with modified, D- and selenium residues, whose letters depend on the residue table
# (DeepMind's: PCA E, SEC A, DAL A, MSE M): a copy of 2XHE under an id of its own, in which five
# residues of chain A (entity 1), in the stretch hbb_human's search aligns (321-344,
# EGGAGALKQMLKDLPQHREQMQKY), get these comp_ids (sequence, residue scheme, atoms; the chemical
# components table gains them). Its canonical one-letter sequence, and so its pdb70 and pdb_seqres
# entries, stays 2XHE's, so the targets that hit 2XHE hit it too; one letter in 24 changes under
# DeepMind's table (PCA: Q -> E), so its realignment keeps the template (90% identity needed).
MODIFIED_ENTRY = ('9MOD', '2XHE', 'A', '1', {324: 'DAL', 326: 'SEC', 329: 'PCA', 330: 'MSE', 341: 'MSE'})
NEW_COMPONENTS = ("DAL 'D-peptide linking' n D-ALANINE ? 'C3 H7 N O2' 89.093",
                  "SEC 'L-peptide linking' n SELENOCYSTEINE ? 'C3 H7 N O2 Se' 168.053",
                  "PCA 'L-peptide linking' n 'PYROGLUTAMIC ACID' ? 'C5 H7 N O3' 129.114",
                  "MSE 'L-peptide linking' n SELENOMETHIONINE ? 'C5 H11 N O2 Se' 196.106")
# The loops that name a residue's comp_id: (column of the chain, its value's index in
# MODIFIED_ENTRY (2: chain, 3: entity), the residue's position, the comp_id columns).
RESIDUE_LOOPS = {'_entity_poly_seq': ('entity_id', 3, 'num', ('mon_id',)),
                 '_pdbx_poly_seq_scheme': ('asym_id', 2, 'seq_id', ('mon_id', 'pdb_mon_id', 'auth_mon_id')),
                 '_atom_site': ('label_asym_id', 2, 'label_seq_id', ('label_comp_id', 'auth_comp_id'))}
# Demo and test targets: a globin with many real homologs; the HPV E2 DNA-binding domain, whose
# own structure (1A7G) is a real template; and conotoxin PIIIE (1AS5, 24 residues), small enough
# for quick model and relaxation tests on a CPU.
TARGETS = {'hbb_human': 'HBB_HUMAN', 'e2_dbd': '1a7g_E', 'conotoxin': '1as5_A'}
# Complex targets (multimer preset): (header, source) per chain, in chain order.
# pim1_epha2: two real human domains of two Pfam families (the PIM1 kinase domain, an EphA2 fn3
# domain), whose UniProt hits share species (HUMAN, BOVIN, CHICK, DROME, MOUSE, RAT), so MSA pairing
# has rows to pair; not a known complex. e2_dimer: the HPV E2 DNA-binding domain, a real homodimer.
COMPLEXES = {
    'pim1_epha2': (('PIM1_HUMAN kinase domain', 'PIM1_HUMAN_129-381'),
                   ('EPHA2_HUMAN fn3 domain', 'EPHA2_HUMAN_437-519')),
    'e2_dimer': (('1a7g_E copy 1', '1a7g_E'), ('1a7g_E copy 2', '1a7g_E')),
}
SWISSPROT_FASTA = ('Fasta/protein_lib.fa', 'SwissProt/multi_ex.fasta')


def run(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)


def cstranslate_binary():
    with open('/proc/cpuinfo') as f:
        variant = 'avx2' if ' avx2' in f.read() else 'plain'
    # Debian's cstranslate wrapper is broken; call the SIMD build directly.
    return '/usr/libexec/hhsuite/cstranslate-' + variant


def ungapped(seq):
    return str(seq).replace('-', '').replace('.', '').upper()


def read_sources():
    """Every real protein sequence we use, grouped by source: group -> {name: sequence}."""
    groups = {'globins': {}, 'tutorial': {}, 'Pkinase': {}, 'fn3': {}, 'biopython': {}}
    for rec in SeqIO.parse(os.path.join(HMMER_TUTORIAL, 'globins45.fa'), 'fasta'):
        groups['globins'][rec.id] = str(rec.seq)
    for rec in SeqIO.parse(os.path.join(HMMER_TUTORIAL, 'HBB_HUMAN'), 'fasta'):
        groups['tutorial'][rec.id] = str(rec.seq)
    with open(os.path.join(HMMER_TUTORIAL, '7LESS_DROME')) as f:
        for rec in swiss_entries(f):
            groups['tutorial']['7LESS_DROME'] = rec['sequence']
    for family in ('Pkinase', 'fn3'):
        aln = AlignIO.read(os.path.join(HMMER_TUTORIAL, family + '.sto'), 'stockholm')
        for rec in aln:
            groups[family][rec.id.replace('/', '_')] = ungapped(rec.seq)
    for path in sorted(glob.glob(os.path.join(BIOPYTHON_TESTS, 'Fasta', '*.pro'))):
        for rec in SeqIO.parse(path, 'fasta'):
            groups['biopython']['bp_' + os.path.basename(path).split('.')[0]] = str(rec.seq)
    groups['pdb'] = pdb_chains(real_cifs())
    # 1AS5 has no release date, so it is a sequence here, not a template. Its trailing X is the
    # C-terminal amide cap, not a residue.
    conotoxin = MMCIF2Dict(io.StringIO(read_cif('1AS5')))['_entity_poly.pdbx_seq_one_letter_code_can'][0]
    groups['peptides'] = {'1as5_A': conotoxin.rstrip('X')}
    return groups


def read_cif(entry):
    with gzip.open(os.path.join(BIOPYTHON_TESTS, 'PDB', entry + '.cif.gz'), 'rt') as f:
        return f.read()


def real_cifs():
    """(entry, mmCIF text) of the real template entries."""
    return [(entry, read_cif(entry)) for entry in TEMPLATE_ENTRIES]


def template_cifs():
    """Every template entry's (entry, mmCIF text): the real ones and the modified copy."""
    entry, source = MODIFIED_ENTRY[:2]
    return real_cifs() + [(entry, modified_cif(read_cif(source).replace(source, entry)))]


def modified_cif(text):
    """MODIFIED_ENTRY's residues renamed in every loop that names them, line by line (the text is
    kept as it is elsewhere, whatever Biopython builds the test data)."""
    out, category, columns, in_header = [], None, [], False
    for line in text.splitlines():
        if line.startswith('loop_'):
            category, columns, in_header = None, [], True
        elif in_header and line.startswith('_'):
            category, _, column = line.split()[0].partition('.')
            columns.append(column)
        else:
            if in_header and category == '_chem_comp':
                out += NEW_COMPONENTS   # the loop's first row: the new components go before it
            in_header = False
            if category in RESIDUE_LOOPS and len(line.split()) == len(columns):
                line = renamed_row(category, dict(zip(columns, line.split())), columns) or line
        out.append(line)
    return '\n'.join(out) + '\n'


def renamed_row(category, row, columns):
    """The row with its residue renamed, or None when it is not one of MODIFIED_ENTRY's."""
    chain_column, which, position, comp_columns = RESIDUE_LOOPS[category]
    renamed = MODIFIED_ENTRY[4]
    if row[chain_column] != MODIFIED_ENTRY[which] or not row[position].isdigit() or int(row[position]) not in renamed:
        return None
    return ' '.join(renamed[int(row[position])] if c in comp_columns and row[c] != '?' else row[c] for c in columns)


def pdb_chains(cifs, with_names=False):
    """'1a7g_E' -> sequence (with_names: (sequence, molecule name)), for every protein chain of
    these (entry, mmCIF text)."""
    chains = {}
    for entry, text in cifs:
        d = MMCIF2Dict(io.StringIO(text))
        names = dict(zip(d['_entity.id'], d['_entity.pdbx_description']))
        for entity, seq, strands, kind in zip(d['_entity_poly.entity_id'], d['_entity_poly.pdbx_seq_one_letter_code_can'],
                                              d['_entity_poly.pdbx_strand_id'], d['_entity_poly.type']):
            if kind != 'polypeptide(L)':
                continue
            for chain in strands.split(','):
                seq = seq.replace('\n', '')
                chains['%s_%s' % (entry.lower(), chain)] = (seq, names[entity].strip("'")) if with_names else seq
    return chains


def uniprot_records():
    """(header, sequence) of real UniProt records, one per accession, with UniProt's header format."""
    records = {}
    for rel in SWISSPROT_FASTA:
        for rec in SeqIO.parse(os.path.join(BIOPYTHON_TESTS, rel), 'fasta'):
            records.setdefault(rec.id.split('|')[1], (rec.description, str(rec.seq)))
    for path in sorted(glob.glob(os.path.join(BIOPYTHON_TESTS, 'SwissProt', '*.txt*'))):
        if os.path.basename(path).startswith('keyw'):
            continue   # keyword lists, not entries
        with (gzip.open(path, 'rt') if path.endswith('.gz') else open(path)) as f:
            for rec in swiss_entries(f):
                name = re.search(r'Full=([^;{]+)', rec['description']).group(1).strip()
                organism = rec['organism'].split(' (')[0]
                header = '%s|%s|%s %s OS=%s' % (_db_code(rec['id'], rec['name']), rec['id'], rec['name'], name, organism)
                records.setdefault(rec['id'], (header, rec['sequence']))
    for family in ('Pkinase', 'fn3'):   # Pfam seed domains: the domain's residues of the entry
        for rec in AlignIO.read(os.path.join(HMMER_TUTORIAL, family + '.sto'), 'stockholm'):
            accession = rec.annotations['accession'].split('.')[0]
            name, span = rec.id.split('/')
            header = '%s|%s|%s Pfam %s seed domain %s' % (_db_code(accession, name), accession, name, family, span)
            records.setdefault(accession, (header, ungapped(rec.seq)))
    return list(records.values())


def swiss_entries(lines):
    """The fields used here of each Swiss-Prot flat-file entry: id (first accession), name,
    description (DE lines), organism (OS lines) and sequence. Read directly: the stack's Biopython
    (DeepMind's pin, 1.79) cannot parse the feature tables of today's entries."""
    entry = {'accessions': [], 'DE': [], 'OS': [], 'sequence': []}
    in_sequence = False
    for line in lines:
        code, value = line[:2], line[5:].rstrip('\n')
        if code == '//':
            yield {'id': entry['accessions'][0], 'name': entry['name'], 'description': ' '.join(entry['DE']),
                   'organism': ' '.join(entry['OS']).rstrip('.'), 'sequence': ''.join(entry['sequence'])}
            entry, in_sequence = {'accessions': [], 'DE': [], 'OS': [], 'sequence': []}, False
        elif in_sequence:
            entry['sequence'].append(line.replace(' ', '').strip())
        elif code == 'ID':
            entry['name'] = value.split()[0]
        elif code == 'AC':
            entry['accessions'] += [a.strip() for a in value.split(';') if a.strip()]
        elif code in ('DE', 'OS'):
            entry[code].append(value.strip())
        elif code == 'SQ':
            in_sequence = True


def _db_code(accession, name):
    """'tr' for TrEMBL entries (named ACCESSION_SPECIES), else 'sp' (Swiss-Prot)."""
    return 'tr' if name.startswith(accession + '_') else 'sp'


def write_fasta(path, records):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        for name, seq in records:
            f.write('>%s\n%s\n' % (name, seq))


def hmmalign_a3m(work, family, hmm, records):
    """Align records to a Pfam/HMMER profile with hmmalign; A2M without '.' is A3M."""
    fasta = os.path.join(work, family + '.fasta')
    write_fasta(fasta, records)
    out = subprocess.run(['hmmalign', '--outformat', 'A2M', os.path.join(HMMER_TUTORIAL, hmm), fasta],
                         check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
    a3m = os.path.join(work, family + '.a3m')
    with open(a3m, 'w') as f:
        f.write(out.replace('.', ''))
    return a3m


def build_hh_database(prefix, a3m_dir):
    """ffindex database with _a3m, _hhm and _cs219 parts, as HHblits/HHsearch expect."""
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    run(['ffindex_build', '-s', prefix + '_a3m.ffdata', prefix + '_a3m.ffindex', a3m_dir])
    run(['ffindex_apply', prefix + '_a3m.ffdata', prefix + '_a3m.ffindex',
         '-i', prefix + '_hhm.ffindex', '-d', prefix + '_hhm.ffdata',
         '--', 'hhmake', '-i', 'stdin', '-o', 'stdout', '-v', '0'])
    make_cs219(prefix)


def make_cs219(prefix):
    """The cs219 part HHblits' prefilter reads, from the _a3m part, as HH-suite documents."""
    run([cstranslate_binary(), '-f', '-x', '0.3', '-c', '4', '-I', 'a3m',
         '-A', os.path.join(HHSUITE_DATA, 'cs219.lib'),
         '-D', os.path.join(HHSUITE_DATA, 'context_data.lib'),
         '-i', prefix + '_a3m', '-o', prefix + '_cs219'])


def cluster_dir(work, name, families, singles):
    """A directory of A3M clusters: family alignments plus one singleton per other sequence."""
    d = os.path.join(work, name)
    os.makedirs(d)
    for fam_name, a3m_path in families:
        shutil.copy(a3m_path, os.path.join(d, fam_name + '.a3m'))
    for seq_name, seq in singles:
        write_fasta(os.path.join(d, seq_name + '.a3m'), [(seq_name, seq)])
    return d


def colabfold_paths():
    """Role -> path in the data directory of each of ColabFold's databases, from the kit's registry."""
    return {role: rel for db in COLABFOLD.values() for role, rel in db.paths.items()}


def mmseqs(*args):
    # MMSEQS_FORCE_MERGE=1: one data file per database part, as ColabFold's setup_databases.sh makes them.
    run(['mmseqs'] + list(args) + ['-v', '1'], env=dict(os.environ, MMSEQS_FORCE_MERGE='1'))


def build_colabfold_db(prefix, records, work):
    """build_colabfold_db_from_fasta for (name, sequence) records."""
    fasta = os.path.join(work, os.path.basename(prefix) + '.fasta')
    write_fasta(fasta, records)
    build_colabfold_db_from_fasta(prefix, fasta, work)


def build_colabfold_db_from_fasta(prefix, fasta, work, clustering='cluster'):
    """An MMseqs2 expandable profile database in the layout of ColabFold's (tsv2exprofiledb's): the
    records clustered at 30% identity as UniRef30's are; <prefix> holds the clusters'
    representatives, <prefix>_seq every member and <prefix>_aln each representative's alignments to
    its members (with backtraces, as expandaln needs), all under one set of keys, with headers.
    clustering: 'cluster', or 'linclust' (linear time, for the benchmarks' millions of sequences)."""
    name = os.path.basename(prefix)
    clusters = os.path.join(work, name + '_clu')
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    mmseqs('createdb', fasta, prefix + '_seq', '--shuffle', '0')
    mmseqs(clustering, prefix + '_seq', clusters, os.path.join(work, name + '_tmp'), '--min-seq-id', '0.3', '-c', '0.8',
           '--threads', '2')
    mmseqs('createsubdb', clusters, prefix + '_seq', prefix)
    # createsubdb links the headers, .lookup and .source by absolute path, into the build's temporary
    # directory: the members' headers serve the representatives through a relative alias instead (in
    # tsv2exprofiledb's layout too the clusters and members share one header database); the others
    # are not part of that layout.
    mmseqs('rmdb', prefix + '_h')
    mmseqs('aliasdb', prefix + '_seq_h', prefix + '_h')
    for ext in ('.lookup', '.source'):
        os.remove(prefix + ext)
    mmseqs('align', prefix + '_seq', prefix + '_seq', clusters, prefix + '_aln', '-a', '-e', 'inf', '--threads', '2')


def build(out, work):
    os.makedirs(work)
    groups = read_sources()
    seqs = {n: s for g in groups.values() for n, s in g.items()}
    names = list(seqs)
    chains = groups['pdb']

    # Sequence databases (FASTA) for jackhmmer: UniRef90 holds everything; MGnify and small BFD
    # hold overlapping halves, so each search finds a different, real set of homologs.
    write_fasta(os.path.join(out, 'uniref90/uniref90.fasta'), [(n, seqs[n]) for n in names])
    write_fasta(os.path.join(out, 'mgnify/mgy_clusters_2022_05.fa'),
                [(n, seqs[n]) for i, n in enumerate(names) if i % 2 == 0])
    write_fasta(os.path.join(out, 'small_bfd/bfd-first_non_consensus_sequences.fasta'),
                [(n, seqs[n]) for i, n in enumerate(names) if i % 2 == 1 or n in chains])

    # Cluster alignments: HMMER's Pfam families, aligned to their profiles with hmmalign.
    globins4 = AlignIO.read(os.path.join(HMMER_TUTORIAL, 'globins4.sto'), 'stockholm')
    fam = {
        'globins4': hmmalign_a3m(work, 'globins4', 'globins4.hmm',
                                 [(r.id, ungapped(r.seq)) for r in globins4]),
        'globins45': hmmalign_a3m(work, 'globins45', 'globins4.hmm', groups['globins'].items()),
        'Pkinase': hmmalign_a3m(work, 'Pkinase', 'Pkinase.hmm', groups['Pkinase'].items()),
        'fn3': hmmalign_a3m(work, 'fn3', 'fn3.hmm', groups['fn3'].items()),
    }

    # HH-suite databases hold clusters (MSAs) like the real ones, plus singletons.
    others = [item for g in ('tutorial', 'biopython', 'pdb', 'peptides') for item in groups[g].items()]
    build_hh_database(os.path.join(out, 'uniref30/UniRef30_2021_03'), cluster_dir(
        work, 'uniref30', [(f, fam[f]) for f in ('globins4', 'Pkinase', 'fn3')], others))
    build_hh_database(os.path.join(out, 'bfd/bfd_metaclust_clu_complete_id30_c90_final_seq.sorted_opt'),
                      cluster_dir(work, 'bfd', [(f, fam[f]) for f in ('globins45', 'fn3')], others))

    # pdb70: one HHblits-built MSA per PDB chain, searched against our UniRef30 as the real pdb70 is.
    pdb70_dir = os.path.join(work, 'pdb70')
    os.makedirs(pdb70_dir)
    for chain, seq in pdb_chains(template_cifs()).items():
        query = os.path.join(work, chain + '.fasta')
        write_fasta(query, [(chain, seq)])
        run(['hhblits', '-i', query, '-d', os.path.join(out, 'uniref30/UniRef30_2021_03'),
             '-oa3m', os.path.join(pdb70_dir, chain + '.a3m'), '-o', '/dev/null',
             '-n', '2', '-cpu', '2', '-v', '0'])
    build_hh_database(os.path.join(out, 'pdb70/pdb70'), pdb70_dir)

    mmcif_dir = os.path.join(out, 'pdb_mmcif/mmcif_files')
    os.makedirs(mmcif_dir)
    for entry, text in template_cifs():
        with open(os.path.join(mmcif_dir, entry.lower() + '.cif'), 'w') as f:
            f.write(text)
    with open(os.path.join(out, 'pdb_mmcif/obsolete.dat'), 'w') as f:
        f.write(' LIST OF OBSOLETE COORDINATE ENTRIES AND SUCCESSORS\n')
    # pdb_seqres.txt in the real file's format, for the multimer template search (hmmsearch).
    os.makedirs(os.path.join(out, 'pdb_seqres'))
    with open(os.path.join(out, 'pdb_seqres/pdb_seqres.txt'), 'w') as f:
        for chain, (seq, name) in pdb_chains(template_cifs(), with_names=True).items():
            f.write('>%s mol:protein length:%d  %s\n%s\n' % (chain, len(seq), name, seq))
    write_fasta(os.path.join(out, 'uniprot/uniprot.fasta'), uniprot_records())
    # ColabFold's databases: UniRef30 holds every sequence, the environmental one every second.
    paths = colabfold_paths()
    build_colabfold_db(os.path.join(out, paths['colabfold_uniref']), [(n, seqs[n]) for n in names], work)
    build_colabfold_db(os.path.join(out, paths['colabfold_envdb']),
                       [(n, seqs[n]) for i, n in enumerate(names) if i % 2 == 1], work)

    for target, source in TARGETS.items():
        write_fasta(os.path.join(out, 'targets', target + '.fasta'), [(target, seqs[source])])
    for target, chain_sources in COMPLEXES.items():
        write_fasta(os.path.join(out, 'targets', target + '.fasta'),
                    [(header, seqs[source]) for header, source in chain_sources])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cache', default=os.path.expanduser('~/.cache/alphafold-hpc-kit'),
                    help='cache directory (default: %(default)s)')
    args = ap.parse_args()
    with open(__file__, 'rb') as f:   # and the registry's paths for ColabFold's databases
        key = hashlib.sha256(f.read() + repr(sorted(colabfold_paths().items())).encode()).hexdigest()[:16]
    out = os.path.join(os.path.abspath(args.cache), 'testdata-' + key)
    if not os.path.isdir(out):
        os.makedirs(args.cache, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix='.testdata-', dir=args.cache)
        try:
            print('building test databases in %s ...' % out, file=sys.stderr)
            build(os.path.join(tmp, 'data'), os.path.join(tmp, 'work'))
            os.rename(os.path.join(tmp, 'data'), out)  # atomic: a half-built cache is never used
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(out)


if __name__ == '__main__':
    main()
