"""Locating the search tools, and which package provides each one when it is missing.

Templates are realigned with kalign 2.04, as in DeepMind's images: kalign 3 aligns differently,
so it gives other template features. PyPI's colabfold-binaries ships a kalign 2.04 binary (the
development and venv installs), bioconda's kalign2 package another (conda and the images).
"""
import os
import re
import shutil
import subprocess

from kit_common.errors import EXIT_MISSING, KitError

# tool -> how to install it
PACKAGES = {
    'jackhmmer': 'the "hmmer" package (apt install hmmer, or conda install bioconda::hmmer)',
    'hhblits': 'the "hhsuite" package (apt install hhsuite, or conda install bioconda::hhsuite)',
    'hhsearch': 'the "hhsuite" package (apt install hhsuite, or conda install bioconda::hhsuite)',
    'hmmsearch': 'the "hmmer" package (apt install hmmer, or conda install bioconda::hmmer)',
    'hmmbuild': 'the "hmmer" package (apt install hmmer, or conda install bioconda::hmmer)',
    'kalign': 'kalign 2.04 (pip install colabfold-binaries, or conda install bioconda::kalign2)',
    'mmseqs': 'MMseqs2 (apt install mmseqs2, or conda install bioconda::mmseqs2)',
}
KALIGN_MAJOR = '2.'


def resolve(tool, given=None):
    """Absolute path of a tool: the --<tool>-binary value if given, else kalign 2.04 for kalign,
    else the first on PATH."""
    if tool == 'kalign':
        return _kalign2(given)
    path = given if given else shutil.which(tool)
    if _executable(path):
        return os.path.abspath(path)
    raise _missing(tool, given)


def _executable(path):
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def _missing(tool, given, detail=''):
    where = 'at %s' % given if given else 'on PATH'
    return KitError('%s not found %s%s' % (tool, where, detail),
                    'install %s, load the module that provides it, or pass --%s-binary PATH'
                    % (PACKAGES[tool], tool), EXIT_MISSING)


def _kalign2(given):
    candidates = [given] if given else [_bundled_kalign(), shutil.which('kalign2'), shutil.which('kalign')]
    found = [(p, version(p)) for p in candidates if _executable(p)]
    for path, ver in found:
        if ver.startswith(KALIGN_MAJOR):
            return os.path.abspath(path)
    if not found:
        raise _missing('kalign', given)
    raise _missing('kalign', given, ' in version 2 (%s is kalign %s; DeepMind\'s pipeline realigns templates '
                   'with kalign 2.04, and kalign 3 gives other template features)' % (found[0][0], found[0][1] or '?'))


def _bundled_kalign():
    try:
        import colabfold_binaries
        return colabfold_binaries.binary_path('kalign')
    except (ImportError, OSError):
        return None


def version(path):
    """The tool's version string, for features.meta.json; '' when it does not say."""
    for flag in ('-h', '--help', '-v'):
        try:
            out = subprocess.run([path, flag], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 universal_newlines=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        match = re.search(r'(?:HMMER|HHblits|HHsearch|Kalign)\s+(?:version\s+)?\(?(\d+\.\d+[\w.]*)'
                          r'|MMseqs2 Version:\s+(\S+)', out, re.I)
        if match:
            return match.group(1) or match.group(2)
    return ''
