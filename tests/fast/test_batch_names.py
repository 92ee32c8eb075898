"""A batch's stage names and states are declared once, in fold_runtime/batch/state.py (Stage, State,
TargetStage): no module of fold_runtime/batch spells one as a bare string literal, so a renamed state
cannot leave a copy behind that silently stops matching."""
import ast
import os

from conftest import ROOT
from fold_runtime.batch import state

CLASSES = (state.Stage, state.State, state.TargetStage)
NAMES = {v for c in CLASSES for k, v in vars(c).items() if k.isupper()}


def _declarations(tree):
    """The constants of the classes above: the one place their strings may stand."""
    return {id(node.value) for cls in tree.body if isinstance(cls, ast.ClassDef)
            and cls.name in {c.__name__ for c in CLASSES} for node in cls.body if isinstance(node, ast.Assign)}


def test_no_batch_module_spells_a_state_or_stage_name_of_its_own():
    copies = []
    for base, _, names in os.walk(os.path.join(ROOT, 'fold_runtime', 'batch')):
        for name in sorted(n for n in names if n.endswith('.py')):
            path = os.path.join(base, name)
            with open(path, encoding='utf-8') as f:
                tree = ast.parse(f.read())
            declared = _declarations(tree) if path == state.__file__ else set()
            copies += ['%s:%d %r' % (os.path.relpath(path, ROOT), node.lineno, node.value) for node in ast.walk(tree)
                       if isinstance(node, ast.Constant) and node.value in NAMES and id(node) not in declared]
    assert len(NAMES) == 9 and not copies, copies


def test_stored_values_are_the_strings_earlier_batches_hold():
    # On-disk records and report.json keep these exact values: batches written before stay readable.
    assert (state.Stage.MSA, state.Stage.PREDICT) == ('msa', 'predict')
    assert (state.State.RUNNING, state.State.RELAXING, state.State.DONE, state.State.FAILED) == \
        ('running', 'relaxing', 'done', 'failed')
    assert state.STAGES == ('pending', 'msa', 'ready', 'predicting', 'relaxing', 'done', 'failed')
