"""The README names tests, files and commands that exist: a renamed test or file fails here, not
in a reader's hands."""
import os
import re

from conftest import ROOT

README = open(os.path.join(ROOT, 'README.md')).read()


def test_every_test_the_readme_names_exists():
    named = re.findall(r'`(tests/[\w/]+\.py)::(\w+)`', README)
    assert named, 'the README names no tests'
    for path, name in named:
        with open(os.path.join(ROOT, path)) as f:
            assert re.search(r'^def %s\(' % name, f.read(), re.M), '%s::%s' % (path, name)


def test_the_cron_line_the_readme_documents_is_in_the_cron_example():
    command = re.search(r'documented line runs `(alphafold-data sync [^`]+)`', README).group(1)
    with open(os.path.join(ROOT, 'data_sync', 'examples', 'alphafold-data.cron')) as f:
        assert '/bin/%s\n' % command in f.read()
