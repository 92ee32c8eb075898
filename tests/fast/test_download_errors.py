"""A requests download's own errors are named as such, not as a full disk (issue #22, N9)."""
import pytest

from data_sync import fetch
from kit_common.errors import EXIT_TOOL, KitError
from servers import HttpServer


@pytest.mark.parametrize('target', ['file:///etc/hostname', 'ftp://127.0.0.1/x'])
def test_a_redirect_to_another_scheme_is_a_download_error(tmp_path, target):
    (tmp_path / 'www').mkdir()
    http = HttpServer(tmp_path / 'www')
    http.faults['/db.txt'] = {'redirect': target}
    try:
        with pytest.raises(KitError) as err:
            fetch.download(http.url + '/db.txt', str(tmp_path / 'data' / 'db.txt'), 'requests', quiet=True)
    finally:
        http.close()
    assert err.value.exit_code == EXIT_TOOL
    assert 'No connection adapters' in str(err.value) and 'free space' not in str(err.value.fix)
    assert not (tmp_path / 'data' / 'db.txt').exists()
