"""Where a stack's AlphaFold and its stereo-chemistry file come from, checked before use.

ALPHAFOLD_SOURCE (one setting, `make install` and `make deps`):
  - empty: DeepMind's git repository, checked out at the variant's pinned revision;
  - a `git archive` tarball, or a directory of them (../shared/upstream/alphafold offline):
    accepted only when its sha256 is listed in recipes/alphafold-archives.sha256 with the
    variant's own revision;
  - a checkout (a directory with an `alphafold/` package): used as it is;
  - pip requirements (space-separated), e.g. ColabFold's fork `alphafold-colabfold==2.3.27`: an
    alternative distribution a site names on purpose; the kit's fidelity layer applies to it.
The stereo-chemistry file (not in DeepMind's repository; its Dockerfile downloads it) comes from
the pinned OpenStructure commit, or from a local copy named by the environment variable
STEREO_SOURCE (make passes it on); either is checked against its sha256.
"""
import hashlib
import os
import tarfile
import urllib.request

from installer import ROOT
from kit_common.errors import EXIT_INPUT, KitError

ALPHAFOLD_GIT = 'https://github.com/google-deepmind/alphafold.git'
ARCHIVES = os.path.join(ROOT, 'recipes', 'alphafold-archives.sha256')
# The revision every AlphaFold Dockerfile downloads it at, and the sha256 of those bytes (Spack's
# alphafold package pins the same).
STEREO_URL = ('https://git.scicore.unibas.ch/schwede/openstructure/-/raw/7102c63615b64735c4941278d92b554ec94415f8'
              '/modules/mol/alg/src/stereo_chemical_props.txt')
STEREO_SHA256 = '24510899eeb49167cffedec8fa45363a4d08279c0c637a403b452f7d0ac09451'
STEREO_FILE = 'stereo_chemical_props.txt'
FIX = 'fix the cause above and rerun; nothing was switched in'


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def archives():
    """{sha256: (revision, file name)} of the tarballs an offline install accepts."""
    table = {}
    with open(ARCHIVES, encoding='utf-8') as f:
        for line in f:
            if line.strip() and not line.startswith('#'):
                digest, revision, name = line.split()
                table[digest] = (revision, name)
    return table


def kind(source):
    """'git', 'archive', 'archive-dir', 'checkout' or 'pip' for an ALPHAFOLD_SOURCE value."""
    if not source:
        return 'git'
    if os.path.isdir(source):
        return 'checkout' if os.path.isdir(os.path.join(source, 'alphafold')) else 'archive-dir'
    if os.path.isfile(source):
        return 'archive'
    if os.sep in source or source.endswith(('.tar.gz', '.tgz')):
        raise KitError('ALPHAFOLD_SOURCE %s does not exist' % source,
                       'name an existing checkout, archive or directory of archives', EXIT_INPUT)
    return 'pip'


def archive_for(source, revision):
    """The tarball of revision: source itself, or the one of a directory of tarballs; its sha256
    must be listed with revision."""
    table = archives()
    if os.path.isfile(source):
        digest = sha256_of(source)
        if digest not in table:
            raise KitError('%s (sha256 %s) is not a known AlphaFold archive' % (source, digest),
                           'use an archive listed in %s, a checkout or the git repository' % ARCHIVES, EXIT_INPUT)
        if table[digest][0] != revision:
            raise KitError('%s holds AlphaFold %s, but the variant pins %s' % (source, table[digest][0], revision),
                           'use the archive of %s' % revision, EXIT_INPUT)
        return source
    for digest, (listed, name) in sorted(table.items()):
        if listed == revision and os.path.isfile(os.path.join(source, name)):
            return archive_for(os.path.join(source, name), revision)
    raise KitError('%s has no archive of AlphaFold %s' % (source, revision),
                   'add alphafold-<revision>.tar.gz (see %s), or leave ALPHAFOLD_SOURCE unset to clone it' % ARCHIVES,
                   EXIT_INPUT)


def unpack(archive, into):
    """The checkout directory inside a verified archive (members are checked to stay inside it)."""
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            target = os.path.realpath(os.path.join(into, member.name))
            if not target.startswith(os.path.realpath(into) + os.sep) or not (member.isfile() or member.isdir()):
                raise KitError('%s holds an unexpected member %r' % (archive, member.name), FIX)
        tar.extractall(into)
    tops = os.listdir(into)
    if len(tops) != 1 or not os.path.isdir(os.path.join(into, tops[0], 'alphafold')):
        raise KitError('%s does not unpack to one AlphaFold checkout' % archive, FIX)
    return os.path.join(into, tops[0])


def stereo_bytes():
    """The stereo-chemistry table from STEREO_SOURCE (a URL or a local file; default:
    OpenStructure), checked against STEREO_SHA256."""
    source = os.environ.get('STEREO_SOURCE') or STEREO_URL
    try:
        if os.path.isfile(source):
            with open(source, 'rb') as f:
                data = f.read()
        else:
            with urllib.request.urlopen(source, timeout=120) as response:
                data = response.read()
    except (OSError, ValueError) as e:
        raise KitError('could not read %s from %s: %s' % (STEREO_FILE, source, e),
                       'set STEREO_SOURCE to a copy of it (its sha256 is checked)')
    check_stereo(data, source)
    return data


def check_stereo(data, source):
    digest = hashlib.sha256(data).hexdigest()
    if digest != STEREO_SHA256:
        raise KitError('%s from %s has sha256 %s, not OpenStructure 7102c63\'s %s'
                       % (STEREO_FILE, source, digest, STEREO_SHA256),
                       'set STEREO_SOURCE to an unmodified copy of %s' % STEREO_URL)
