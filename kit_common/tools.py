"""Running an external tool (rsync, aria2c, sbatch, apptainer, conda ...): a missing binary, a
full disk and a timeout become KitErrors here, once, with the tool's own last words."""
import subprocess

from kit_common.errors import EXIT_IO, EXIT_MISSING, EXIT_TOOL, KitError

DISK_FULL_WORDS = ('No space left', 'Disk quota exceeded')


def disk_full(text):
    return any(w in (text or '') for w in DISK_FULL_WORDS)


def run(cmd, what, fix, install_hint=None, full_fix=None, timeout=None, capture=True, **kwargs):
    """Run cmd (text output captured unless capture=False); returns the CompletedProcess. A
    failure raises a KitError: '<what> failed (exit N): <its last output>' with fix, or a
    disk-full error (exit 5) with full_fix."""
    pipe = subprocess.PIPE if capture else None
    try:
        res = subprocess.run(cmd, stdout=kwargs.pop('stdout', pipe), stderr=kwargs.pop('stderr', pipe),
                             universal_newlines=True, timeout=timeout, **kwargs)
    except FileNotFoundError:
        raise KitError('%s not found on PATH' % cmd[0],
                       install_hint or 'install %s or load the module that provides it' % cmd[0], EXIT_MISSING)
    except subprocess.TimeoutExpired:
        raise KitError('%s did not finish within %g s' % (what, timeout), fix, EXIT_TOOL)
    if res.returncode != 0:
        said = ((res.stderr or '') + (res.stdout or '')).strip()
        detail = said[-500:] or '(it printed nothing)'
        if disk_full(said):
            raise KitError('%s ran out of disk space (exit %d): %s' % (what, res.returncode, detail),
                           full_fix or 'free space on the file system it writes to, then rerun', EXIT_IO)
        raise KitError('%s failed (exit %d): %s' % (what, res.returncode, detail), fix, EXIT_TOOL)
    return res
