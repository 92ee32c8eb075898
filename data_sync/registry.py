"""The one registry of AlphaFold databases: where each lives under the data directory.

Both `data_sync` (downloads, staging) and `fold_runtime` (searches) read it, so no database path
is written anywhere else. Layouts follow AlphaFold's own download scripts, v2.3.2 and v2.0.x.
"""
from dataclasses import dataclass
from typing import Dict, Tuple

GB = 10 ** 9


@dataclass(frozen=True)
class Database:
    name: str
    # Paths the tools are given, relative to the data directory, keyed by role.
    paths: Dict[str, str]
    # Paths that must exist for the database to be usable (HH-suite databases are file prefixes).
    required: Tuple[str, ...]
    download_bytes: int
    unpacked_bytes: int


def _hh(prefix: str) -> Tuple[str, ...]:
    """The ffindex files HHblits/HHsearch open for a database prefix."""
    return tuple(prefix + suffix for suffix in (
        '_a3m.ffdata', '_a3m.ffindex', '_cs219.ffdata', '_cs219.ffindex',
        '_hhm.ffdata', '_hhm.ffindex'))


def _db(name, paths, required, download_gb, unpacked_gb):
    return Database(name, dict(paths), tuple(required), int(download_gb * GB), int(unpacked_gb * GB))


_BFD = 'bfd/bfd_metaclust_clu_complete_id30_c90_final_seq.sorted_opt'
_UNIREF30 = 'uniref30/UniRef30_2021_03'
_UNICLUST30 = 'uniclust30/uniclust30_2018_08/uniclust30_2018_08'
_PARAMS = tuple('params/params_model_%d%s.npz' % (i, s) for s in ('', '_ptm') for i in range(1, 6))
_PARAMS_MULTIMER = tuple('params/params_model_%d_multimer_v3.npz' % i for i in range(1, 6))

_COMMON = (
    _db('params', {'params': 'params'}, _PARAMS, 5.3, 5.3),
    _db('bfd', {'bfd': _BFD}, _hh(_BFD), 272, 1800),
    _db('small_bfd', {'small_bfd': 'small_bfd/bfd-first_non_consensus_sequences.fasta'},
        ['small_bfd/bfd-first_non_consensus_sequences.fasta'], 9.6, 17),
    _db('pdb70', {'pdb70': 'pdb70/pdb70'}, _hh('pdb70/pdb70'), 19.5, 56),
    _db('pdb_mmcif', {'mmcif_dir': 'pdb_mmcif/mmcif_files', 'obsolete': 'pdb_mmcif/obsolete.dat'},
        ['pdb_mmcif/mmcif_files', 'pdb_mmcif/obsolete.dat'], 43, 238),
    _db('uniref90', {'uniref90': 'uniref90/uniref90.fasta'}, ['uniref90/uniref90.fasta'], 34, 67),
)

DATABASES = {
    '2.3': {d.name: d for d in _COMMON + (
        _db('mgnify', {'mgnify': 'mgnify/mgy_clusters_2022_05.fa'},
            ['mgnify/mgy_clusters_2022_05.fa'], 67, 120),
        _db('uniref30', {'uniref30': _UNIREF30}, _hh(_UNIREF30), 52.5, 206),
        _db('uniprot', {'uniprot': 'uniprot/uniprot.fasta'}, ['uniprot/uniprot.fasta'], 53, 105),
        _db('pdb_seqres', {'pdb_seqres': 'pdb_seqres/pdb_seqres.txt'},
            ['pdb_seqres/pdb_seqres.txt'], 0.2, 0.2),
    )},
    '2.0': {d.name: d for d in _COMMON + (
        _db('mgnify', {'mgnify': 'mgnify/mgy_clusters_2018_12.fa'},
            ['mgnify/mgy_clusters_2018_12.fa'], 32.9, 64),
        # In 2.0 the HHblits pair is BFD + Uniclust30; the role keeps the 2.3 name.
        _db('uniclust30', {'uniref30': _UNICLUST30}, _hh(_UNICLUST30), 24.9, 87),
    )},
}

# Databases each preset searches; multimer presets add the MSA-pairing and template databases.
PRESETS = {
    'full_dbs': ('uniref90', 'mgnify', 'bfd', 'uniref30', 'pdb70', 'pdb_mmcif'),
    'reduced_dbs': ('uniref90', 'mgnify', 'small_bfd', 'pdb70', 'pdb_mmcif'),
    'multimer_extras': ('uniprot', 'pdb_seqres'),
}


def databases_for(preset: str, version: str = '2.3'):
    """The Database records a preset needs, for an AlphaFold database set version."""
    table = DATABASES[version]
    names = PRESETS[preset]
    if version == '2.0':
        names = tuple('uniclust30' if n == 'uniref30' else n for n in names)
    return [table[n] for n in names if n in table]


def role_paths(preset: str, version: str = '2.3') -> Dict[str, str]:
    """Role -> relative path for every database a preset uses (e.g. 'uniref90' -> 'uniref90/uniref90.fasta')."""
    roles = {}
    for db in databases_for(preset, version):
        roles.update(db.paths)
    return roles
