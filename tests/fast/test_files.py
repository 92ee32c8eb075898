"""The shared layer's atomic outputs, digests and tool runner."""
import errno
import os

import pytest

from kit_common import digests, files, tools
from kit_common.errors import KitError


def test_publish_dir_lets_the_first_writer_win_unless_asked_to_replace(tmp_path):
    final = str(tmp_path / 'entry')
    for content, replace, published in (('first', False, True), ('second', False, False), ('third', True, True)):
        tmp = files.temp_dir(str(tmp_path))
        open(os.path.join(tmp, 'f'), 'w').write(content)
        assert files.publish_dir(tmp, final, replace=replace) is published
        assert not os.path.exists(tmp)
    assert open(os.path.join(final, 'f')).read() == 'third'
    assert sorted(os.listdir(str(tmp_path))) == ['entry']       # no debris


def test_write_text_is_atomic_and_respects_the_umask(tmp_path):
    path = str(tmp_path / 'out.json')
    files.write_json(path, {'b': 1, 'a': [1, 2]})
    assert open(path).read().startswith('{\n  "a"')
    old = os.umask(0o077)
    try:
        files.write_text(path, 'x')
    finally:
        os.umask(old)
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o600) and os.listdir(str(tmp_path)) == ['out.json']


def test_io_errors_map_to_exit_5_with_a_fix():
    full = files.io_error('/x/f', OSError(errno.ENOSPC, 'No space left on device'))
    denied = files.io_error('/x/f', OSError(errno.EACCES, 'Permission denied'))
    assert full.exit_code == denied.exit_code == 5
    assert 'no space left' in full.problem and '--output-dir' in full.fix and 'Permission denied' in denied.problem


def test_digests_are_stable(tmp_path):
    path = tmp_path / 'f'
    path.write_bytes(b'abc')
    assert digests.file_digest(str(path)) == 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    assert digests.file_digest(str(path), 'md5') == '900150983cd24fb0d6963f7d28e17f72'
    assert digests.json_digest({'a': 1, 'b': 2}) == digests.json_digest({'b': 2, 'a': 1})


def test_tool_failures_are_kit_errors(tmp_path):
    with pytest.raises(KitError) as err:
        tools.run(['no-such-tool-here'], 'the tool', 'fix it', install_hint='apt install it')
    assert err.value.exit_code == 3 and err.value.fix == 'apt install it'
    with pytest.raises(KitError) as err:
        tools.run(['sh', '-c', 'echo "write failed: No space left on device" >&2; exit 1'], 'copy', 'rerun',
                  full_fix='free the scratch disk')
    assert err.value.exit_code == 5 and err.value.fix == 'free the scratch disk'
    with pytest.raises(KitError) as err:
        tools.run(['sh', '-c', 'echo broken >&2; exit 3'], 'the copy', 'rerun it')
    assert err.value.exit_code == 4 and 'the copy failed (exit 3): broken' in err.value.problem


def test_remove_tree_removes_a_symlink_never_what_it_points_to(tmp_path):
    (tmp_path / 'other').mkdir()
    (tmp_path / 'other' / 'kept').write_text('x')
    for name, make in (('link', lambda p: os.symlink(str(tmp_path / 'other'), p)), ('dir', os.makedirs),
                       ('file', lambda p: open(p, 'w').close())):
        make(str(tmp_path / name))
        files.remove_tree(str(tmp_path / name))
        assert not os.path.lexists(str(tmp_path / name))
    files.remove_tree(str(tmp_path / 'absent'))
    assert (tmp_path / 'other' / 'kept').read_text() == 'x'
