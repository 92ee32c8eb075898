"""alphafold-batch report: <out>/report.json (proteins per hour, GPU-busy fraction, compiles,
cache hits, stage-time statistics) and <out>/report.png, a timeline of every target's CPU and GPU
stage (as the paper's Figures 6-9) above the distributions of the stage times."""
import glob
import json
import os

from fold_runtime.batch import state as batch_state
from kit_common import files


def _stats(values):
    values = sorted(values)
    if not values:
        return None
    return {'n': len(values), 'min': round(values[0], 2), 'median': round(values[len(values) // 2], 2),
            'mean': round(sum(values) / len(values), 2), 'max': round(values[-1], 2)}


def summarise(out):
    rows = batch_state.statuses(out)
    workers = []
    for path in sorted(glob.glob(batch_state.batch_dir(out, 'timings', 'worker-*.json'))):
        with open(path) as f:
            workers.append(json.load(f))
    primaries = [r for r in rows if r['name'] == r['primary']]
    msa = [r['msa_end'] - r['msa_start'] for r in primaries if r['msa_end'] and r['msa_start']]
    predict = [r['predict_end'] - r['predict_start'] for r in primaries if r['predict_end'] and r['predict_start']]
    starts = [t for r in rows for t in (r['msa_start'], r['predict_start']) if t]
    ends = [t for r in rows for t in (r['msa_end'], r['predict_end']) if t]
    wall = max(ends) - min(starts) if starts and ends else 0.0
    done = sum(1 for r in rows if r['stage'] == 'done')
    worker_wall = sum(w.get('wall_s', 0) for w in workers)
    return {
        'targets': len(rows), 'done': done, 'failed': sum(1 for r in rows if r['stage'] == 'failed'),
        'unique_sequences': len(primaries), 'duplicates': len(rows) - len(primaries),
        'cache_hits': sum(1 for r in primaries if r['features'] == 'cache'),
        'cpu_stage_runs': sum(1 for r in primaries if r['features'] == 'cpu_stage'),
        'wall_s': round(wall, 1), 'proteins_per_hour': round(done * 3600.0 / wall, 2) if wall else None,
        'gpu_busy_fraction': round(sum(w.get('busy_s', 0) for w in workers) / worker_wall, 4) if worker_wall else None,
        'compiles': sum(w.get('compiles', 0) for w in workers),
        'compile_s': round(sum(w.get('compile_s', 0) for w in workers), 1),
        'workers': len(workers),
        'stage_seconds': {'msa': _stats(msa), 'predict': _stats(predict)},
        'per_target': rows,
    }


def plot(summary, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [r for r in summary['per_target'] if r['name'] == r['primary']]
    starts = [t for r in rows for t in (r['msa_start'], r['predict_start']) if t]
    t0 = min(starts) if starts else 0.0
    fig, (timeline, hist) = plt.subplots(2, 1, figsize=(10, 3 + 0.25 * len(rows)),
                                         gridspec_kw={'height_ratios': [max(2, len(rows) / 4.0), 2]})
    for i, r in enumerate(rows):
        for stage, color in (('msa', 'tab:blue'), ('predict', 'tab:orange')):
            if r[stage + '_start'] and r[stage + '_end']:
                timeline.barh(i, (r[stage + '_end'] - r[stage + '_start']) / 60.0,
                              left=(r[stage + '_start'] - t0) / 60.0, color=color)
    timeline.set_yticks(range(len(rows)))
    timeline.set_yticklabels([r['name'] for r in rows], fontsize=7)
    timeline.set_xlabel('minutes since the batch started')
    timeline.set_title('%d targets: CPU stage (blue), GPU stage (orange); %s proteins/hour, GPU busy %s'
                       % (summary['targets'], summary['proteins_per_hour'],
                          '%.0f%%' % (100 * summary['gpu_busy_fraction']) if summary['gpu_busy_fraction'] else 'n/a'),
                       fontsize=9)
    for stage, color in (('msa', 'tab:blue'), ('predict', 'tab:orange')):
        values = [(r[stage + '_end'] - r[stage + '_start']) / 60.0 for r in rows
                  if r[stage + '_start'] and r[stage + '_end']]
        if values:
            hist.hist(values, bins=20, alpha=0.6, color=color, label='%s stage' % ('CPU' if stage == 'msa' else 'GPU'))
    hist.set_xlabel('minutes per target')
    hist.set_ylabel('targets')
    hist.legend()
    fig.tight_layout()
    tmp = path + '.tmp.png'
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def write(out):
    summary = summarise(out)
    plot(summary, os.path.join(out, 'report.png'))
    files.write_json(os.path.join(out, 'report.json'), summary)
    return summary
