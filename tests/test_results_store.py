"""The results store and the published-layout tables and plots, on constructed run records.

The store is SQLite in WAL mode: concurrent writers (slurm array tasks) must all land, a
re-put of a finished run is idempotent, and a newer record replaces an older one. The tables
(VTAB-1k with group means and the published rows, FGVC with mixed protocols, dense tasks) and
the plots read the store; the sweep that fills it for real is in test_harness.py.
"""
import csv
import io
import json
import math
import multiprocessing
import os
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.dirname(__file__))

from runner_utils import PY, expected_ppt, md_row, result_record, run_tool  # noqa: E402
from vpetl_mm.benchmark import plots, report  # noqa: E402
from vpetl_mm.benchmark.published import VTAB  # noqa: E402
from vpetl_mm.benchmark.store import ResultStore  # noqa: E402
from vpetl_mm.datasets import VTAB_DATASETS, VTAB_GROUPS  # noqa: E402


def _writer(path, worker, barrier):
    store = ResultStore(path, timeout=60)
    barrier.wait()  # everyone writes at once
    for i in range(20):
        store.put(result_record(config=f'configs/w{worker}/vit-b_vtab-dtd.py', seed=i,
                          value=float(worker)))
        store.put(result_record(config='configs/shared/vit-b_vtab-dtd.py', seed=i,
                          value=float(worker), end=f'2026-01-01T00:00:{worker:02d}+00:00'))


def test_store_survives_concurrent_writers(tmp_path):
    path = str(tmp_path / 'results.db')
    ResultStore(path)
    ctx = multiprocessing.get_context('fork')  # separate processes, each its own connections
    barrier = ctx.Barrier(6)
    procs = [ctx.Process(target=_writer, args=(path, w, barrier)) for w in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 6
    store = ResultStore(path)
    assert store.integrity() == 'ok' and len(store) == 6 * 20 + 20
    for w in range(6):
        mine = [r for r in store.records() if r['config'] == f'configs/w{w}/vit-b_vtab-dtd.py']
        assert sorted(r['seed'] for r in mine) == list(range(20))
        assert all(r['value'] == w for r in mine)
    # each shared key holds the newest record (the latest `end`), whatever the write order
    shared = [r for r in store.records() if r['config'].startswith('configs/shared')]
    assert len(shared) == 20 and all(r['value'] == 5. for r in shared)


def test_store_is_idempotent_and_keeps_finished_results(tmp_path):
    store = ResultStore(str(tmp_path / 'r.db'))
    assert store.put(result_record()) and store.put(result_record()) and len(store) == 1
    # a crashed retry does not erase the result; a newer finished run replaces it
    assert not store.put(result_record(status='failed', error='boom', end='2026-02-01'))
    assert store.status('configs/lora/vit-b_vtab-dtd.py', 0, 'default') == 'done'
    assert store.put(result_record(value=71., end='2026-03-01'))
    assert store.get('configs/lora/vit-b_vtab-dtd.py', 0, 'default')['value'] == 71.
    assert not store.put(result_record(value=60., end='2025-01-01'))  # an older record
    # the key is (config, seed, protocol)
    store.put(result_record(seed=1))
    store.put(result_record(protocol='legacy'))
    assert len(store) == 3
    # collect: run_record.json files under a folder, idempotent
    for i in range(2):
        folder = tmp_path / 'work' / str(i)
        folder.mkdir(parents=True)
        (folder / 'run_record.json').write_text(json.dumps(result_record(
            config='configs/adapter/vit-b_vtab-dtd.py', seed=i)))
    assert store.collect([str(tmp_path / 'work')]) == 2 and len(store) == 5
    store.collect([str(tmp_path / 'work')])
    assert len(store) == 5


# -- tables on a constructed store -------------------------------------------------------------
def _vtab_store(path):
    """LoRA and Adapter on VTAB-1k, 3 seeds: top-1 = base + 2 * task index + seed; Adapter
    lacks smallnorb-ele."""
    store = ResultStore(path)
    for method, base in (('lora', 60.), ('adapter', 50.)):
        for i, task in enumerate(VTAB_DATASETS):
            if method == 'adapter' and task == 'vtab-smallnorb-ele':
                continue
            for seed in range(3):
                store.put(result_record(f'configs/{method}/vit-b_{task}.py', seed,
                                  value=base + 2 * i + seed,
                                  params=294912 if method == 'lora' else 165888))
    return store


def test_vtab_table_group_means_published_and_formats(tmp_path):
    store = _vtab_store(str(tmp_path / 'r.db'))
    table, points = report.build_table(store.records(benchmark='vtab'), 'vtab')
    names = [c.name for c in table.columns]
    assert names[:20] == ['Method'] + list(report.VTAB_SHORT)
    assert names[20:] == ['Natural', 'Specialized', 'Structured', 'Mean (19 tasks)',
                          'Mean (groups)', 'Params (M)', 'PPT', 'Published mean', 'Seeds']
    rows = {row[0]: row for row in table.rows}
    assert [row[0] for row in table.rows] == ['Adapter', 'LoRA']  # the published order
    idx = {g: [i for i, t in enumerate(VTAB_DATASETS) if VTAB_GROUPS[t] == g]
           for g in ('natural', 'specialized', 'structured')}
    # per task: mean of base + 2i + {0, 1, 2} = base + 2i + 1, std 1
    lora = rows['LoRA']
    assert lora[3].mean == pytest.approx(60 + 2 * 2 + 1) and lora[3].std == pytest.approx(1)
    for col, group in zip((20, 21, 22), ('natural', 'specialized', 'structured')):
        expected = 60 + 2 * sum(idx[group]) / len(idx[group]) + 1
        assert lora[col].mean == pytest.approx(expected) and not lora[col].partial
        assert lora[col].std == pytest.approx(1.)  # per-seed group means differ by 1
    # the mean both ways: over the 19 tasks as V-PETL publishes it, and of the three group means
    assert lora[23].mean == pytest.approx(60 + 2 * 9 + 1)
    assert lora[24].mean == pytest.approx((67 + 78 + 90) / 3) != lora[23].mean
    assert lora[24].std == pytest.approx(1.) and not lora[24].partial
    assert lora[25] == pytest.approx(0.294912)
    # PPT from the 19-task mean (V-PETL's)
    assert lora[26] == pytest.approx(79. / 100 * math.exp(-math.log10(294912 / 1e7 + 1)))
    assert lora[27] == VTAB['LoRA']['mean'] == 72.25 and lora[28] == '0,1,2'
    adapter = rows['Adapter']
    assert adapter[19] is None and adapter[22].partial and not adapter[20].partial
    assert adapter[22].mean == pytest.approx(50 + 2 * sum(range(11, 18)) / 7 + 1)
    assert adapter[23].partial and adapter[23].mean == pytest.approx(50 + 2 * 8.5 + 1)
    # Structured over its 7 tasks present: (57 + 68 + 79) / 3, marked partial
    assert adapter[24].partial and adapter[24].mean == pytest.approx(68.)
    assert adapter[27] == 71.44
    assert [p.label for p in points] == ['Adapter', 'LoRA']
    assert points[1].metric == pytest.approx(79.) and points[1].params == 294912

    md = report.render(table, 'md')
    assert md_row(md, 'LoRA')[20:] == ['67.00 ± 1.00', '78.00 ± 1.00', '90.00 ± 1.00',
                                        '79.00 ± 1.00', '78.33 ± 1.00', '0.29', '0.78', '72.25',
                                        '0,1,2']
    adapter = md_row(md, 'Adapter')
    assert adapter[3] == '55.00 ± 1.00' and adapter[19] == '-'
    assert adapter[22:25] == ['79.00 ± 1.00*', '68.00 ± 1.00*', '68.00 ± 1.00*']
    assert adapter[27] == '71.44'
    assert 'Protocol: default.' in md and '*: mean over the datasets present only' in md
    assert 'Mean (19 tasks): the plain mean over the tasks, as V-PETL Bench' in md
    assert 'Mean (groups): the mean of the Natural / Specialized / Structured means' in md
    assert 'Published: V-PETL Bench, ViT-B/16 IN-21K; legacy protocol' in md

    rows_csv = [r for r in csv.reader(io.StringIO(report.render(table, 'csv')))
                if r and not r[0].startswith('#')]
    header = rows_csv[0]
    assert header[:3] == ['Method', 'C100', 'C100 std']
    lora_csv = dict(zip(header, next(r for r in rows_csv if r[0] == 'LoRA')))
    assert float(lora_csv['Natural']) == 67. and float(lora_csv['Natural std']) == 1.
    assert float(lora_csv['Published mean']) == 72.25
    assert float(lora_csv['Mean (19 tasks)']) == 79.
    assert float(lora_csv['Mean (19 tasks) std']) == 1.
    assert float(lora_csv['Mean (groups)']) == pytest.approx(78.3333, abs=1e-4)
    assert float(lora_csv['Mean (groups) std']) == 1.
    assert '# Protocol: default.' in report.render(table, 'csv')

    tex = report.render(table, 'latex')
    assert r'\toprule' in tex and r'\bottomrule' in tex and r'\begin{tabular}{l' in tex
    assert r'67.00 $\pm$ 1.00' in tex and r'79.00 $\pm$ 1.00$^*$' in tex
    assert r'Params (M)' in tex and r'Protocol: default.' in tex and r'top-1 (\%)' in tex
    assert 'Mean (19 tasks) & Mean (groups) & Params (M)' in tex and '78.33 $\\pm$ 1.00' in tex


def test_fgvc_mixed_protocols_and_dense_tables_and_plots(tmp_path):
    store = ResultStore(str(tmp_path / 'r.db'))
    for protocol, value in (('default', 85.), ('legacy', 87.)):
        for seed in (0, 1):
            store.put(result_record('configs/lora/vit-b_fgvc-cub.py', seed, protocol, value + seed,
                              protocol_label=f'{protocol} label'))
    table, _ = report.build_table(store.records(benchmark='fgvc'), 'fgvc')
    assert [c.name for c in table.columns][:3] == ['Method', 'Protocol', 'CUB-200-2011']
    assert [(r[0], r[1], r[2].mean) for r in table.rows] == [('LoRA', 'default', 85.5),
                                                             ('LoRA', 'legacy', 87.5)]
    assert 'Protocol: default label; legacy label.' in table.notes

    for method, box, mem in (('lora', 0.512, 11975.), ('e3va', 0.505, 7639.)):
        for seed in (0, 1):
            store.put(result_record(f'configs/{method}/swin-b_cascade-coco.py', seed, 'none',
                              box + seed / 100, metric='coco/bbox_mAP', value_pct=None,
                              metrics={'coco/bbox_mAP': box + seed / 100,
                                       'coco/segm_mAP': 0.44}, peak_mem_mb=mem + seed,
                              params=3_030_000))
    table, points = report.build_table(store.records(benchmark='coco'), 'coco')
    assert [c.name for c in table.columns] == [
        'Method', 'Params (M)', 'Memory (MB)', 'box AP', 'box AP PPT', 'mask AP', 'mask AP PPT',
        'Published box AP', 'Published mask AP']
    lora = next(r for r in table.rows if r[0] == 'LoRA')
    assert lora[3].mean == pytest.approx(51.7) and lora[5].mean == pytest.approx(44.)
    assert lora[4] == pytest.approx(expected_ppt(0.517, 3_030_000), abs=1e-4)
    assert lora[2].mean == 11975.5 and lora[7:] == [51.2, 44.3]
    assert [p.label for p in points] == ['LoRA', 'E3VA']
    assert points[1].memory_mb == 7639.5
    written = plots.make_plots('coco', points, str(tmp_path / 'plots'))
    assert sorted(osp.basename(p) for p in written) == sorted(
        f'coco_{n}.{e}' for n in ('accuracy_vs_params', 'ppt', 'memory_vs_accuracy')
        for e in ('png', 'svg'))
    assert all(osp.getsize(p) > 1000 for p in written)

    out = run_tool([PY, 'tools/report.py', '--store', str(tmp_path / 'r.db'), '--format',
                    'latex', '--out', str(tmp_path / 'tables')], str(tmp_path / 'rep.log'))
    assert sorted(os.listdir(tmp_path / 'tables')) == ['coco.tex', 'fgvc.tex']
    assert 'coco: 2 rows' in out


# -- grid, commands, slurm -------------------------------------------------------------------
