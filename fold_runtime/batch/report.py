"""alphafold-batch report: <out>/report.json (unique proteins per hour, busy fractions, compiles,
cache hits, stage-time statistics, every target with its best model's scores and ISO-8601 times),
<out>/summary.csv (one row per target) and <out>/report.png: a timeline of every unique target's
CPU stage, prediction and relaxation (as the paper's Figures 6-9) above each target's stage times."""
import csv
import glob
import io
import json
import os
import time

from fold_runtime import meta
from fold_runtime.batch import state as batch_state
from fold_runtime.batch.state import Stage, TargetStage
from kit_common import files, text as text_lists

CSV_COLUMNS = ('target', 'stage', 'duplicate_of', 'length', 'features', 'best_model', 'mean_plddt', 'ptm', 'iptm',
               'ranking_confidence', 'msa_s', 'predict_s', 'relax_s', 'msa_start', 'predict_end', 'error')
# A stage's interval in a status row: the prediction ends where its relaxation is handed off.
MSA, PREDICT, RELAX = Stage.MSA, Stage.PREDICT, 'relax'
SPANS = {MSA: ('msa_start', 'msa_end'), PREDICT: ('predict_start', 'predicted'), RELAX: ('relax_start', 'relax_end')}
COLORS = {MSA: 'tab:blue', PREDICT: 'tab:orange', RELAX: 'tab:green'}
STAGE_NAMES = {MSA: 'CPU stage', PREDICT: 'prediction', RELAX: 'relaxation and ranked files'}
LANES = {MSA: -0.25, PREDICT: 0.0, RELAX: 0.25}


def _stats(values):
    values = sorted(values)
    if not values:
        return None
    return {'n': len(values), 'min': round(values[0], 2), 'median': round(values[len(values) // 2], 2),
            'mean': round(sum(values) / len(values), 2), 'max': round(values[-1], 2)}


def _seconds(row, stage):
    start, end = (row[k] for k in SPANS[stage])
    if stage == PREDICT:
        end = end or row['predict_end']   # a prediction recorded without a relax step
    return end - start if start and end else None


def summarise(out):
    rows = batch_state.statuses(out)
    workers = []
    for path in sorted(glob.glob(batch_state.batch_dir(out, 'timings', 'worker-*.json'))):
        with open(path) as f:
            workers.append(json.load(f))
    primaries = [r for r in rows if r['name'] == r['primary']]
    starts = [t for r in rows for t in (r['msa_start'], r['predict_start']) if t]
    ends = [t for r in rows for t in (r['msa_end'], r['predict_end'], r['relax_end']) if t]
    wall = max(ends) - min(starts) if starts and ends else 0.0
    # Throughput counts unique sequences: a duplicate costs nothing, so counting it would flatter.
    unique_done = sum(1 for r in primaries if r['stage'] == TargetStage.DONE)
    worker_wall = sum(w.get('wall_s', 0) for w in workers)
    busy = round(sum(w.get('busy_s', 0) for w in workers) / worker_wall, 4) if worker_wall else None
    accelerator = any(w.get('accelerator') for w in workers)
    return {
        'generated': batch_state.iso(time.time()),
        'targets': len(rows), TargetStage.DONE: sum(1 for r in rows if r['stage'] == TargetStage.DONE),
        TargetStage.FAILED: sum(1 for r in rows if r['stage'] == TargetStage.FAILED),
        'unique_sequences': len(primaries), 'duplicates': len(rows) - len(primaries), 'unique_done': unique_done,
        'cache_hits': sum(1 for r in primaries if r['features'] == 'cache'),
        'chain_searches': chain_searches(out, primaries),
        'cpu_stage_runs': sum(1 for r in primaries if r['features'] == 'cpu_stage'),
        'wall_s': round(wall, 1), 'proteins_per_hour': round(unique_done * 3600.0 / wall, 2) if wall else None,
        # Prediction alone over the workers' wall time (relaxation runs beside it, in the relax
        # pool); "GPU busy" only where a GPU was used.
        'worker_busy_fraction': busy,
        'predict_s': round(sum(w.get('busy_s', 0) for w in workers), 1),
        'relax_s': round(sum(w.get('relax_s', 0) for w in workers), 1), 'accelerator_used': accelerator,
        'gpu_busy_fraction': busy if accelerator else None,
        'compiles': sum(w.get('compiles', 0) for w in workers),
        'compile_s': round(sum(w.get('compile_s', 0) for w in workers), 1),
        'workers': len(workers),
        'stage_seconds': {stage: _stats([s for s in (_seconds(r, stage) for r in primaries) if s is not None])
                          for stage in SPANS},
        'per_target': rows,
    }


def chain_searches(out, primaries):
    """How many complex chains this batch searched (the rest came from the cache, or were copies),
    from each complex's features.meta.json; None without complexes."""
    chains = [c for r in primaries for c in (meta.load(os.path.join(out, r['name'])) or {}).get('chains', ())]
    return sum(1 for c in chains if c['msas_of'] == c['chain_id'] and c['features_source'] == 'cpu_stage') \
        if chains else None


def by_iptm(rows):
    """Complexes best first by ipTM, as a screen is read; rows without one keep their order, after."""
    def key(row):
        iptm = (row.get('best') or {}).get('iptm')
        return (iptm is None, -(iptm or 0.0))
    return sorted(rows, key=key)


def csv_text(rows):
    """summary.csv: one row per target, with its best model's scores and stage times; complexes
    ranked by ipTM."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_COLUMNS, lineterminator='\n')
    writer.writeheader()
    for r in by_iptm(rows):
        best = r.get('best') or {}
        seconds = {stage: _seconds(r, stage) for stage in SPANS}
        writer.writerow({
            'target': r['name'], 'stage': r['stage'], 'duplicate_of': '' if r['name'] == r['primary'] else r['primary'],
            'length': r['length'], 'features': r['features'] or '', 'best_model': best.get('model', ''),
            'mean_plddt': _round(best.get('mean_plddt'), 2), 'ptm': _round(best.get('ptm'), 4),
            'iptm': _round(best.get('iptm'), 4), 'ranking_confidence': _round(best.get('ranking_confidence'), 4),
            'msa_s': _round(seconds[MSA], 1), 'predict_s': _round(seconds[PREDICT], 1),
            'relax_s': _round(seconds[RELAX], 1),
            'msa_start': batch_state.iso(r['msa_start']) or '', 'predict_end': batch_state.iso(r['predict_end']) or '',
            'error': (r['error'] or '').splitlines()[0] if r['error'] else ''})
    return buf.getvalue()


def _round(value, digits):
    return '' if value is None else round(value, digits)


def title(summary):
    duplicates = [r['name'] for r in summary['per_target'] if r['name'] != r['primary']]
    text = '%d targets, %d unique' % (summary['targets'], summary['unique_sequences'])
    if duplicates:
        text += ' (duplicates not drawn, they share their twin\'s run: %s)' % text_lists.listing(duplicates, 5)
    text += '\n%s unique proteins/hour; predict %.0f s, relax %.0f s; ' % (
        summary['proteins_per_hour'], summary['predict_s'], summary['relax_s'])
    if summary['accelerator_used']:
        return text + 'accelerator busy %.0f%% (predictions only)' % (100 * summary['gpu_busy_fraction'])
    return text + 'no accelerator used (CPU only)'


def figure(summary):
    """The report's figure, unique targets only: the timeline above each target's stage times on
    a log scale, so a seconds-long cache hit shows beside an hours-long prediction. On the
    timeline a bar is at least 0.4% of the batch's span wide (the exact times are below), and a
    target's CPU stage, prediction and relaxation sit on three lanes, so none hides another."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [r for r in summary['per_target'] if r['name'] == r['primary']]
    starts = [t for r in rows for t in (r['msa_start'], r['predict_start']) if t]
    t0 = min(starts) if starts else 0.0
    seconds = {(i, stage): _seconds(r, stage) for i, r in enumerate(rows) for stage in SPANS}
    seconds = {k: v for k, v in seconds.items() if v is not None}
    floor = (min(seconds.values()) if seconds else 1.0) / 2.0   # the log axis' left end
    min_width = summary['wall_s'] / 60.0 * 0.004
    height = max(2.0, 0.3 * len(rows))
    fig, (timeline, times) = plt.subplots(2, 1, figsize=(10, 2.5 + 2 * height),
                                          gridspec_kw={'height_ratios': [height, height]})
    for (i, stage), value in sorted(seconds.items()):
        offset = LANES[stage]
        timeline.barh(i + offset, max(value / 60.0, min_width), left=(rows[i][SPANS[stage][0]] - t0) / 60.0,
                      color=COLORS[stage], height=0.25)
        times.barh(i + offset, value - floor, left=floor, color=COLORS[stage], height=0.25, label=STAGE_NAMES[stage])
        times.text(value, i + offset, ' %.1f s' % value, va='center', fontsize=7)
    for ax in (timeline, times):
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([r['name'] for r in rows], fontsize=7)
        ax.set_ylim(len(rows) - 0.5, -0.5)
    timeline.set_xlim(left=-summary['wall_s'] / 60.0 * 0.01)   # a bar starting at 0 clear of the axis
    timeline.set_xlabel('minutes since the batch started')
    timeline.set_title(title(summary), fontsize=9)
    times.set_xscale('log')
    times.set_xlim(floor, max(list(seconds.values()) + [floor * 10]) * 3)
    times.set_xlabel('seconds per stage, log scale (CPU stage: blue, prediction: orange, relaxation: green)')
    handles = dict(zip(*reversed(times.get_legend_handles_labels())))
    if handles:
        times.legend(handles.values(), handles.keys(), fontsize=8, loc='lower right')
    fig.tight_layout()
    return fig


def plot(summary, path):
    import matplotlib.pyplot as plt
    fig = figure(summary)
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=100)
    plt.close(fig)
    files.write_bytes(path, buf.getvalue())


def write(out):
    summary = summarise(out)
    plot(summary, os.path.join(out, 'report.png'))
    files.write_text(os.path.join(out, 'summary.csv'), csv_text(summary['per_target']))
    files.write_json(os.path.join(out, 'report.json'),
                     dict(summary, per_target=[batch_state.with_iso_times(r) for r in summary['per_target']]))
    return summary
