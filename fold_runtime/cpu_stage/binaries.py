"""Locating the search tools, and which package provides each one when it is missing."""
import os
import re
import shutil
import subprocess

from kit_common.errors import EXIT_MISSING, KitError

# tool -> (Debian package, conda package) that ships it
PACKAGES = {
    'jackhmmer': ('hmmer', 'bioconda::hmmer'),
    'hhblits': ('hhsuite', 'bioconda::hhsuite'),
    'hhsearch': ('hhsuite', 'bioconda::hhsuite'),
    'kalign': ('kalign', 'bioconda::kalign3'),
}


def resolve(tool, given=None):
    """Absolute path of a tool: the --<tool>-binary value if given, else the first on PATH."""
    path = given if given else shutil.which(tool)
    if path and os.path.isfile(path) and os.access(path, os.X_OK):
        return os.path.abspath(path)
    debian, conda = PACKAGES[tool]
    where = 'at %s' % given if given else 'on PATH'
    raise KitError('%s not found %s' % (tool, where),
                   'install the "%s" package (apt install %s, or conda install %s), load the '
                   'module that provides it, or pass --%s-binary PATH' % (debian, debian, conda, tool),
                   EXIT_MISSING)


def version(path):
    """The tool's version string, for features.meta.json; '' when it does not say."""
    for flag in ('-h', '--help', '-v'):
        try:
            out = subprocess.run([path, flag], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 universal_newlines=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        match = re.search(r'(?:HMMER|HHblits|HHsearch|Kalign)\s+\(?(\d+\.\d+[\w.]*)', out)
        if match:
            return match.group(1)
    return ''
