"""Figures of DoRA, GLoRA, Adapter+ and PACE published outside V-PETL Bench (other protocols):
every one names a method the benchmark runs, and the VTAB-1k report, the generated metafiles
and the digits demo's zoo show them."""
import os.path as osp
import sys

from runner_utils import result_record
from vpetl_mm.benchmark import published, report
from vpetl_mm.benchmark.variants import published_names

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'demo'))
import digits_transfer  # noqa: E402


def test_every_later_row_is_a_benchmark_method_with_a_source():
    names = published_names()
    assert {'DoRA', 'GLoRA', 'Adapter+', 'PACE'} <= set(published.LATER_VTAB)
    for name, entry in published.LATER_VTAB.items():
        assert name in names.values(), name
        assert entry['source'] and entry['note'], name
        groups, mean = entry['groups'], entry['mean']
        if groups:  # the mean of the group means, as published (one decimal)
            assert abs(sum(groups) / 3 - mean) < 0.06, name
        assert name not in published.VTAB  # not V-PETL Bench's protocol: kept apart


def test_vtab_report_notes_the_later_figures():
    records = [result_record(config=f'configs/{m}/vit-b_vtab-dtd.py', value=v)
               for m, v in (('lora', 71.), ('glora', 72.), ('adapter_plus', 73.))]
    table, _ = report.build_table(records, 'vtab')
    later = [n for n in table.notes if n.startswith('Published elsewhere: ')]
    assert len(later) == 2 and 'GLoRA: VTAB-1k mean of group means 78.0' in later[0]
    assert 'Adapter+: VTAB-1k mean of group means 77.6' in later[1]
    row = next(r for r in table.rows if r[0] == 'GLoRA')
    assert row[-2] is None  # no V-PETL Bench published mean for it


def test_metafiles_and_demo_zoo_show_the_new_methods():
    for folder, name in (('glora', 'GLoRA'), ('dora', 'DoRA'), ('adapter_plus', 'Adapter+')):
        with open(osp.join(ROOT, 'configs', folder, 'metafile.yml')) as f:
            assert f'Published Elsewhere: "{published.later_note(name)}"' in f.read(), folder
    zoo = dict(digits_transfer.zoo_methods())
    assert {'DoRA', 'GLoRA', 'Adapter+', 'PACE (LoRA)'} <= set(zoo)
