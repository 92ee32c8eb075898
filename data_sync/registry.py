"""The one registry of AlphaFold databases: where each lives under the data directory.

Both `data_sync` (downloads, staging) and `fold_runtime` (searches) read it, so no database path
is written anywhere else. Layouts follow AlphaFold's own download scripts, v2.3.2 and v2.0.x, and
for --msa-mode mmseqs2 ColabFold's setup_databases.sh (COLABFOLD).
"""
from dataclasses import dataclass
from typing import Dict, Tuple
from urllib.parse import urlsplit

GB = 10 ** 9
EXPANSION_HEADROOM = 4


@dataclass(frozen=True)
class Source:
    """One upstream file and how it unpacks: 'tar'/'tar.gz' into the directory `target`, 'gz' into
    the file `target` (sources sharing a target are concatenated in order), 'file' copied to
    `target`, 'rsync' a tree of gzipped mmCIF files flattened and unzipped into `target`."""
    url: str
    archive: str
    target: str
    # An md5sum-format listing that upstream publishes beside the file, when it does.
    md5_listing: str = ''


@dataclass(frozen=True)
class Database:
    name: str
    # Paths the tools are given, relative to the data directory, keyed by role.
    paths: Dict[str, str]
    # Paths that must exist for the database to be usable (HH-suite databases are file prefixes).
    required: Tuple[str, ...]
    download_bytes: int
    unpacked_bytes: int
    sources: Tuple[Source, ...] = ()
    # A step after its sources are unpacked (data_sync.prepare), by name: MMSEQS2 for ColabFold's.
    prepare: str = ''

    @property
    def expansion(self):
        """What its archives unpack to, per byte downloaded (as the sizes above expect)."""
        return self.unpacked_bytes / self.download_bytes

    @property
    def max_expansion(self):
        """The most an archive of it may unpack to, per byte: upstream's data vary, a bomb's 1000:1 does not."""
        return self.expansion * EXPANSION_HEADROOM

    @property
    def transport(self):
        return 'rsync' if any(s.archive == 'rsync' for s in self.sources) else 'https'


def mirrored(url, mirror=None):
    """The URL under a site mirror: the mirror base plus the upstream path after the host."""
    if not mirror:
        return url
    return mirror.rstrip('/') + urlsplit(url).path


def _hh(prefix: str) -> Tuple[str, ...]:
    """The ffindex files HHblits/HHsearch open for a database prefix."""
    return tuple(prefix + suffix for suffix in (
        '_a3m.ffdata', '_a3m.ffindex', '_cs219.ffdata', '_cs219.ffindex',
        '_hhm.ffdata', '_hhm.ffindex'))


def _db(name, paths, required, download_gb, unpacked_gb, *sources, prepare=''):
    return Database(name, dict(paths), tuple(required), int(download_gb * GB), int(unpacked_gb * GB),
                    tuple(Source(*s) for s in sources), prepare)


def _mmseqs(prefix: str) -> Tuple[str, ...]:
    """The parts of an MMseqs2 expandable profile database as ColabFold's setup_databases.sh leaves
    it: <prefix> (the clusters searched), _seq (their members), _aln (member alignments) and the
    headers. A part's data may be split in .0, .1, ...; its .dbtype and .index are always there."""
    return tuple(prefix + part + ext for part in ('', '_h', '_seq', '_seq_h', '_aln') for ext in ('.dbtype', '.index'))


MMSEQS2 = 'mmseqs2'
# ColabFold's MMseqs2 databases (colabfold_search's --db1 and --db3) under ColabFold's names, which
# carry their releases, in one folder as ColabFold's setup_databases.sh (1.6.x) leaves them. Its TSV
# archives (FAST_PREBUILT_DATABASES=0), made into databases by data_sync.prepare as that script does.
# Sizes: estimates that share out the script's 940 GB (ColabFold's README), not measured. Templates come
# from pdb70 by HHsearch (PRESETS[MMSEQS2]), so the script's pdb100 (for colabfold_search's own
# template search, which the kit does not run) is not fetched.
COLABFOLD_DIR = 'colabfold'
_OPENDATA = 'https://opendata.mmseqs.org/colabfold/'
COLABFOLD = {d.name: d for d in (
    _db('uniref30_2302', {'colabfold_uniref': COLABFOLD_DIR + '/uniref30_2302_db'},
        _mmseqs(COLABFOLD_DIR + '/uniref30_2302_db'), 90, 260,
        (_OPENDATA + 'uniref30_2302.tar.gz', 'tar.gz', COLABFOLD_DIR), prepare=MMSEQS2),
    _db('colabfold_envdb_202108', {'colabfold_envdb': COLABFOLD_DIR + '/colabfold_envdb_202108_db'},
        _mmseqs(COLABFOLD_DIR + '/colabfold_envdb_202108_db'), 110, 480,
        (_OPENDATA + 'colabfold_envdb_202108.tar.gz', 'tar.gz', COLABFOLD_DIR), prepare=MMSEQS2),
)}



# Upstream locations, as in AlphaFold's scripts/download_*.sh.
_GCS = 'https://storage.googleapis.com/alphafold-databases/'
_EBI = 'https://ftp.ebi.ac.uk/pub/databases/uniprot/'
_PDB = 'https://files.wwpdb.org/pub/pdb/'


_BFD = 'bfd/bfd_metaclust_clu_complete_id30_c90_final_seq.sorted_opt'
_UNIREF30 = 'uniref30/UniRef30_2021_03'
_UNICLUST30 = 'uniclust30/uniclust30_2018_08/uniclust30_2018_08'
_PARAMS = tuple('params/params_model_%d%s.npz' % (i, s) for s in ('', '_ptm') for i in range(1, 6))
_PARAMS_MULTIMER = tuple('params/params_model_%d_multimer_v3.npz' % i for i in range(1, 6))

_COMMON = (
    _db('bfd', {'bfd': _BFD}, _hh(_BFD), 272, 1800,
        (_GCS + 'casp14_versions/bfd_metaclust_clu_complete_id30_c90_final_seq.sorted_opt.tar.gz',
         'tar.gz', 'bfd')),
    _db('small_bfd', {'small_bfd': 'small_bfd/bfd-first_non_consensus_sequences.fasta'},
        ['small_bfd/bfd-first_non_consensus_sequences.fasta'], 9.6, 17,
        (_GCS + 'reduced_dbs/bfd-first_non_consensus_sequences.fasta.gz', 'gz',
         'small_bfd/bfd-first_non_consensus_sequences.fasta')),
    _db('pdb70', {'pdb70': 'pdb70/pdb70'}, _hh('pdb70/pdb70'), 19.5, 56,
        ('http://wwwuser.gwdg.de/~compbiol/data/hhsuite/databases/hhsuite_dbs/old-releases/'
         'pdb70_from_mmcif_200401.tar.gz', 'tar.gz', 'pdb70',
         'http://wwwuser.gwdg.de/~compbiol/data/hhsuite/databases/hhsuite_dbs/old-releases/md5sum')),
    _db('pdb_mmcif', {'mmcif_dir': 'pdb_mmcif/mmcif_files', 'obsolete': 'pdb_mmcif/obsolete.dat'},
        ['pdb_mmcif/mmcif_files', 'pdb_mmcif/obsolete.dat'], 43, 238,
        ('rsync://rsync.rcsb.org:33444/ftp_data/structures/divided/mmCIF/', 'rsync', 'pdb_mmcif/mmcif_files'),
        (_PDB + 'data/status/obsolete.dat', 'file', 'pdb_mmcif/obsolete.dat')),
    _db('uniref90', {'uniref90': 'uniref90/uniref90.fasta'}, ['uniref90/uniref90.fasta'], 34, 67,
        (_EBI + 'uniref/uniref90/uniref90.fasta.gz', 'gz', 'uniref90/uniref90.fasta')),
)

DATABASES = {
    '2.3': {d.name: d for d in _COMMON + (
        _db('params', {'params': 'params'}, _PARAMS + _PARAMS_MULTIMER, 5.3, 5.3,
            ('https://storage.googleapis.com/alphafold/alphafold_params_2022-12-06.tar', 'tar', 'params')),
        _db('mgnify', {'mgnify': 'mgnify/mgy_clusters_2022_05.fa'},
            ['mgnify/mgy_clusters_2022_05.fa'], 67, 120,
            (_GCS + 'v2.3/mgy_clusters_2022_05.fa.gz', 'gz', 'mgnify/mgy_clusters_2022_05.fa')),
        _db('uniref30', {'uniref30': _UNIREF30}, _hh(_UNIREF30), 52.5, 206,
            (_GCS + 'v2.3/UniRef30_2021_03.tar.gz', 'tar.gz', 'uniref30')),
        _db('uniprot', {'uniprot': 'uniprot/uniprot.fasta'}, ['uniprot/uniprot.fasta'], 53, 105,
            (_EBI + 'current_release/knowledgebase/complete/uniprot_trembl.fasta.gz', 'gz', 'uniprot/uniprot.fasta'),
            (_EBI + 'current_release/knowledgebase/complete/uniprot_sprot.fasta.gz', 'gz', 'uniprot/uniprot.fasta')),
        _db('pdb_seqres', {'pdb_seqres': 'pdb_seqres/pdb_seqres.txt'},
            ['pdb_seqres/pdb_seqres.txt'], 0.2, 0.2,
            (_PDB + 'derived_data/pdb_seqres.txt', 'file', 'pdb_seqres/pdb_seqres.txt')),
    )},
    '2.0': {d.name: d for d in _COMMON + (
        _db('params', {'params': 'params'}, _PARAMS, 3.5, 3.5,
            ('https://storage.googleapis.com/alphafold/alphafold_params_2021-07-14.tar', 'tar', 'params')),
        _db('mgnify', {'mgnify': 'mgnify/mgy_clusters_2018_12.fa'},
            ['mgnify/mgy_clusters_2018_12.fa'], 32.9, 64,
            (_GCS + 'casp14_versions/mgy_clusters_2018_12.fa.gz', 'gz', 'mgnify/mgy_clusters_2018_12.fa')),
        # In 2.0 the HHblits pair is BFD + Uniclust30; the role keeps the 2.3 name.
        _db('uniclust30', {'uniref30': _UNICLUST30}, _hh(_UNICLUST30), 24.9, 87,
            (_GCS + 'casp14_versions/uniclust30_2018_08_hhsuite.tar.gz', 'tar.gz', 'uniclust30')),
    )},
}
for _table in DATABASES.values():   # ColabFold's databases serve either AlphaFold
    _table.update(COLABFOLD)


# Databases each preset searches; multimer presets add the MSA-pairing and template databases.
# MMSEQS2 (--msa-mode mmseqs2): ColabFold's search on COLABFOLD replaces the MSA searches, and the
# templates come from pdb70 as in the monomer presets.
FULL_DBS, REDUCED_DBS = 'full_dbs', 'reduced_dbs'   # DeepMind's presets (fold_runtime's --db-preset)
PRESETS = {
    FULL_DBS: ('uniref90', 'mgnify', 'bfd', 'uniref30', 'pdb70', 'pdb_mmcif'),
    REDUCED_DBS: ('uniref90', 'mgnify', 'small_bfd', 'pdb70', 'pdb_mmcif'),
    'multimer_extras': ('uniprot', 'pdb_seqres'),
    MMSEQS2: ('pdb70', 'pdb_mmcif'),
}
# What `alphafold-data --preset` fetches: the searches' databases plus the weights.
DOWNLOAD_PRESETS = {
    FULL_DBS: ('params',) + PRESETS[FULL_DBS],
    REDUCED_DBS: ('params',) + PRESETS[REDUCED_DBS],
    'multimer': ('params',) + PRESETS[FULL_DBS] + PRESETS['multimer_extras'],
    MMSEQS2: ('params',) + PRESETS[MMSEQS2] + tuple(COLABFOLD),
}


def databases_for(preset: str, version: str = '2.3', multimer: bool = False):
    """The Database records a preset needs, for an AlphaFold database set version. multimer:
    AlphaFold-Multimer's searches, which find templates in pdb_seqres instead of pdb70 and add
    UniProt for MSA pairing. MMSEQS2: the databases of --msa-mode mmseqs2."""
    table = DATABASES[version]
    names = PRESETS[preset]
    if multimer:
        names = tuple(n for n in names if n != 'pdb70') + PRESETS['multimer_extras']
    if version == '2.0':
        names = tuple('uniclust30' if n == 'uniref30' else n for n in names)
    return [table[n] for n in names if n in table] + (list(COLABFOLD.values()) if preset == MMSEQS2 else [])


def role_paths(preset: str, version: str = '2.3', multimer: bool = False) -> Dict[str, str]:
    """Role -> relative path for every database a preset uses (e.g. 'uniref90' -> 'uniref90/uniref90.fasta')."""
    roles = {}
    for db in databases_for(preset, version, multimer):
        roles.update(db.paths)
    return roles
