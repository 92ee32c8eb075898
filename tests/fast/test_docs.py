"""The docs name files, tests, make targets and options that exist, and the code's pointers into the
docs lead somewhere: a renamed test, file, target or option fails here, not in a reader's hands."""
import ast
import functools
import os
import re
import subprocess
import sys

from conftest import ROOT
from kit_common import commands, errors

DOCS = ['README.md'] + sorted(os.path.join('docs', f) for f in os.listdir(os.path.join(ROOT, 'docs')) if f.endswith('.md'))
# The folders' own READMEs are checked for paths, tests and make targets too.
ALL_DOCS = DOCS + ['installer/README.md', 'modulefiles/README.md', 'recipes/README.md']
PACKAGES = ('kit_common', 'fold_runtime', 'data_sync', 'installer')
# The commands the docs show, with their subcommands (None: no subcommand).
COMMANDS = {'alphafold-msa': None, 'alphafold-predict': None, 'alphafold-run': None,
            'alphafold-batch': ('submit', 'screen', 'status', 'retry', 'report', 'cancel'),
            'alphafold-data': ('plan', 'download', 'verify', 'publish', 'sync', 'stage', 'warm', 'status', 'prune')}
MODULE = {c.name: list(c.module) for c in commands.COMMANDS}


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def code(text):
    """The docs' code: fenced blocks (line continuations joined) and inline `spans`."""
    blocks = re.findall(r'^```[^\n]*\n(.*?)^```', text, re.M | re.S)
    prose = re.sub(r'^```[^\n]*\n.*?^```', '', text, flags=re.M | re.S)
    lines = [line for block in blocks for line in block.replace('\\\n', ' ').splitlines()]
    return lines + re.findall(r'`([^`\n]+)`', prose)


def repository_paths(text):
    """Words of the docs' code that name a path in this repository: their first part is a file or
    folder at its top (not an output, an install prefix or a data directory)."""
    top = {n for n in os.listdir(ROOT) if not n.startswith(('.venv', '.git', '.pytest'))}
    for piece in code(text):
        for word in piece.split():
            word = word.strip('`\'",;:()')
            if '/' not in word or re.search(r'[<>*$…]|\.\.\.', word) or word.split('/')[0] not in top:
                continue
            braces = re.search(r'\{([^}]*)\}', word)
            for alternative in braces.group(1).split(',') if braces else ['']:
                yield word[:braces.start()] + alternative + word[braces.end():] if braces else word


def test_every_path_the_docs_name_exists():
    missing = []
    for doc in ALL_DOCS:
        for path in repository_paths(read(doc)):
            if not os.path.exists(os.path.join(ROOT, path.split('::')[0])):
                missing.append('%s: %s' % (doc, path))
    assert not missing, missing


def test_every_test_the_docs_name_exists():
    named = [(doc, path, name) for doc in ALL_DOCS
             for path, name in re.findall(r'`(tests/[\w/]+\.py)::(\w+)`', read(doc))]
    assert named, 'the docs name no tests'
    for doc, path, name in named:
        assert re.search(r'^def %s\(' % name, read(path), re.M), '%s names %s::%s' % (doc, path, name)


def test_every_make_target_the_docs_name_exists():
    makefile = read('Makefile')
    targets = set(re.findall(r'^([A-Za-z][\w-]*):', makefile, re.M))
    targets |= set(re.search(r'^\.PHONY:(.*)$', makefile, re.M).group(1).split())
    named = {(doc, t) for doc in ALL_DOCS for piece in code(read(doc))
             for t in re.findall(r'(?<![\w-])make ([a-z][\w-]*)', piece)}
    assert named
    assert not [n for n in named if n[1] not in targets], sorted(n for n in named if n[1] not in targets)


@functools.lru_cache(maxsize=None)
def help_text(command, sub):
    res = subprocess.run([sys.executable, '-m'] + MODULE[command] + ([sub] if sub else []) + ['--help'],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode == 0, res.stdout
    return res.stdout


def invocations(text):
    """(command, subcommand, its --options) for every command line the docs' code shows."""
    pattern = r'(?<![\w-])(%s)(?![\w-])(.*)' % '|'.join(COMMANDS)
    for piece in code(text):
        found = re.search(pattern, piece.split(' #')[0])
        if not found:
            continue
        command, rest = found.groups()
        words = rest.split()
        sub = None
        if COMMANDS[command]:
            if not words or words[0] not in COMMANDS[command]:
                continue    # a command named without a subcommand: nothing to check
            sub = words[0]
        yield command, sub, re.findall(r'(?<![\w-])(--[a-z][\w-]*)', rest)


def test_every_option_the_docs_give_a_command_is_in_its_help():
    checked, wrong = 0, []
    for doc in DOCS:
        for command, sub, options in invocations(read(doc)):
            text = help_text(command, sub)
            for option in options:
                checked += 1
                if not re.search(r'(?<![\w-])%s(?![\w-])' % re.escape(option), text):
                    wrong.append('%s: %s %s %s' % (doc, command, sub or '', option))
    assert checked > 20 and not wrong, wrong


def documented_exits(text):
    """[(status, the words after it)] of each list of exit statuses the text gives ('exit 0 ok, 1 failed: ...')."""
    for found in re.finditer(r'\bexits? (\d+(?: [^,\n`]*)?(?:, \d+ [^,\n`]*)*)', text):
        yield [(int(code), words) for code, _, words in (part.partition(' ') for part in found.group(1).split(', '))]


def test_every_exit_status_the_docs_give_is_kit_common_errors():
    """Each 'exit N' the docs and module help name is in the one table; a list of several names each
    status by the table's name."""
    names = {s.code: s.name for s in errors.EXIT_STATUSES}
    wrong, lists = [], 0
    for doc in ALL_DOCS + ['modulefiles/help.txt.in']:
        for found in documented_exits(read(doc)):
            lists += len(found) > 1
            wrong += ['%s: exit %d %s' % (doc, code, words) for code, words in found
                      if code not in names or (len(found) > 1 and not words.startswith(names[code]))]
    assert lists and not wrong, wrong


def test_the_user_quickstart_starts_within_the_first_60_lines():
    lines = read('README.md').splitlines()
    start = lines.index('## User quickstart')
    first_load = next(i for i, line in enumerate(lines) if line.startswith('module load alphafold'))
    assert start < first_load < 60


def test_the_cron_line_the_docs_document_is_in_the_cron_example():
    command = re.search(r'documented line runs `(alphafold-data sync [^`]+)`', read('docs/data.md')).group(1)
    assert '/bin/%s\n' % command in read('data_sync/examples/alphafold-data.cron')


def test_the_codes_pointers_into_the_docs_lead_somewhere():
    """`docs/DESIGN.md §N` is a section of it; `docs/x.md: "Title"` is a title in x."""
    sections = set(re.findall(r'^## (\d+)\. ', read('docs/DESIGN.md'), re.M))
    pointers = 0
    for folder in PACKAGES + ('tests', 'benchmarks', 'scripts', 'modulefiles'):
        for base, _, names in os.walk(os.path.join(ROOT, folder)):
            for name in names:
                if not name.endswith(('.py', '.sh', '.in')):
                    continue
                path = os.path.relpath(os.path.join(base, name), ROOT)
                if path == os.path.join('tests', 'fast', 'test_docs.py'):
                    continue
                text = read(path)
                assert not re.search(r'(?<!docs/)DESIGN\.md', text), '%s: DESIGN.md is docs/DESIGN.md' % path
                for number in re.findall(r'docs/DESIGN\.md §(\d+)', text):
                    pointers += 1
                    assert number in sections, '%s: docs/DESIGN.md has no section %s' % (path, number)
                for doc, title in re.findall(r'(docs/[\w-]+\.md)(?:: "([^"]+)")?', text):
                    pointers += 1
                    assert os.path.exists(os.path.join(ROOT, doc)), '%s: %s' % (path, doc)
                    assert not title or '**%s.**' % title in read(doc) or '# %s' % title in read(doc), \
                        '%s: %s has no "%s"' % (path, doc, title)
    assert pointers >= 4


def imports_of(package):
    """Every module or name one package imports from the other three, as dotted names."""
    for base, _, names in os.walk(os.path.join(ROOT, package)):
        for name in names:
            if name.endswith('.py'):
                tree = ast.parse(read(os.path.relpath(os.path.join(base, name), ROOT)))
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        dotted = [alias.name for alias in node.names]
                    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                        dotted = ['%s.%s' % (node.module, alias.name) for alias in node.names]
                    else:
                        continue
                    for d in dotted:
                        if d.split('.')[0] in PACKAGES and d.split('.')[0] != package:
                            yield d


def test_the_imports_between_packages_are_the_arrows_docs_layout_draws():
    tree = re.search(r'^```\n(kit_common/.*?)^```', read('docs/layout.md'), re.M | re.S).group(1)
    entries = re.split(r'^(?=\S)', tree, flags=re.M)
    for package in PACKAGES:
        entry = next(e for e in entries if e.startswith(package + '/'))
        arrow = re.search(r' {2,}-> (.+)$', entry, re.M)
        allowed = []
        for item in (arrow.group(1).split(', ') if arrow else []):
            head, _, tails = item.partition('.')
            allowed += ['%s.%s' % (head, t) for t in tails.split('/')] if tails else [head]
        unexpected = sorted({d for d in imports_of(package)
                             if not any(d == a or d.startswith(a + '.') for a in allowed)})
        assert not unexpected, '%s imports %s; docs/layout.md draws only %s' % (package, unexpected, allowed)
