"""The results table and plot the demo (and later the benchmark harness) prints."""
import json

import pytest

from vpetl_mm.benchmark import MethodResult, load_result, plot_accuracy_vs_params, to_markdown


def test_markdown_in_published_layout_with_ppt():
    rows = [MethodResult('Linear probing', 52.94, 0), MethodResult('LST', 71.70, 2_380_000)]
    md = to_markdown(rows).splitlines()
    assert md[0].split('|')[1].strip() == 'Method' and 'PPT' in md[0]
    assert '0.5294' in md[2] and '0.6535' in md[3] and '2.38' in md[3]  # published PPT: 0.53, 0.65


def test_load_result_reads_the_hook_outputs(tmp_path):
    (tmp_path / 'petl_report.json').write_text(json.dumps(dict(backbone_trainable=294912)))
    (tmp_path / 'efficiency.json').write_text(json.dumps(dict(peak_mem_mb=900.,
                                                              time_per_iter_s=0.02)))
    (tmp_path / 'test_metrics.json').write_text(json.dumps({'accuracy/top1': 72.25}))
    result = load_result('LoRA', str(tmp_path))
    assert result.params == 294912 and result.time_per_iter_ms == pytest.approx(20.)
    assert result.ppt == pytest.approx(0.7134, abs=1e-4)  # recomputed: no _ppt in the metrics


def test_missing_run_output_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='petl_report.json not found'):
        load_result('LoRA', str(tmp_path))


def test_plot_is_written(tmp_path):
    path = tmp_path / 'plot.png'
    plot_accuracy_vs_params([MethodResult('A', 90., 0), MethodResult('B', 95., 10_000)],
                            str(path))
    assert path.stat().st_size > 1000


def test_seed_mean_and_std_with_the_protocol_named():
    rows = [MethodResult('LoRA', 72.5, 294_912, top1_std=0.4, protocol='default (x)'),
            MethodResult('BitFit', 70., 102_912, top1_std=1.25, protocol='legacy (y)')]
    md = to_markdown(rows)
    assert '72.50 ± 0.40' in md and '70.00 ± 1.25' in md
    assert md.endswith('Protocol: default (x); legacy (y).')
    assert 'Protocol' not in to_markdown([MethodResult('A', 1., 0)])
