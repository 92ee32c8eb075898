"""A target directory's file names are declared once, in fold_runtime/target_layout.py: no other
module of fold_runtime spells one as a string literal (a renamed file would leave that copy behind)."""
import ast
import os
import re

from conftest import ROOT
from fold_runtime import target_layout

NAMES = {v for k, v in vars(target_layout).items() if k.isupper() and isinstance(v, str)} | set(target_layout.PLOTS)
PER_MODEL = re.compile(r'(un)?relaxed_%|ranked_%|result_%|confidence_%|pae_%')


def test_no_module_spells_a_target_file_name_of_its_own():
    copies = []
    for base, _, names in os.walk(os.path.join(ROOT, 'fold_runtime')):
        for name in names:
            path = os.path.join(base, name)
            if not name.endswith('.py') or path == os.path.join(ROOT, 'fold_runtime', 'target_layout.py'):
                continue
            with open(path, encoding='utf-8') as f:
                tree = ast.parse(f.read())
            copies += ['%s:%d %r' % (os.path.relpath(path, ROOT), node.lineno, node.value) for node in ast.walk(tree)
                       if isinstance(node, ast.Constant) and isinstance(node.value, str)
                       and (node.value in NAMES or PER_MODEL.match(node.value))]
    assert len(NAMES) >= 10 and not copies, copies
