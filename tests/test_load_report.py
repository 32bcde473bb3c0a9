"""Every load into a wrapped backbone is reported: what loaded, what is missing and why."""
import logging

import pytest
from mmengine.logging import MMLogger

from conftest import build_petl
from tiny_backbones import TINY_BACKBONES

VIT = TINY_BACKBONES[0]


def load(wrapper, state, context=None):
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # the conftest fixture restores the level afterwards
    try:
        if context:
            with wrapper.load_reporter.during(context):
                wrapper.backbone.load_state_dict(state, strict=False)
        else:
            wrapper.load_state_dict(state, strict=False)  # through the wrapper, as load_from
    finally:
        logger.removeHandler(handler)
    load.records = records
    report = [r for r in records if r.getMessage().startswith('Load report')]
    assert len(report) == 1
    return wrapper.load_reporter.last, report[0]


@pytest.fixture
def lora():
    return build_petl(VIT, dict(type='LoRA', rank=4))


def test_pretrained_file_with_all_host_keys(lora):
    host = {k: v for k, v in lora.state_dict().items() if 'petl_' not in k}
    report, record = load(lora, host, 'host init_weights')
    assert not report['host_missing'] and report['petl_missing'] and not report['adapter_only']
    assert record.levelno == logging.INFO


def test_pretrained_file_with_renamed_keys_warns(lora):
    renamed = {k.replace('layers.', 'blocks.'): v for k, v in lora.state_dict().items()}
    report, record = load(lora, renamed, 'host init_weights')
    assert record.levelno == logging.WARNING
    assert 'host tensors NOT in the checkpoint' in record.getMessage()
    assert 'blocks.0.attn.qkv.weight' in report['unexpected']


def test_adapter_only_checkpoint_is_not_an_error(lora):
    adapter = {k: v for k, v in lora.state_dict().items() if k not in lora.frozen_param_names()}
    report, record = load(lora, adapter)
    assert report['adapter_only'] and record.levelno == logging.INFO
    assert 'adapter-only checkpoint' in record.getMessage()


def test_empty_backbone_checkpoint_of_linear_probe(tmp_path):
    frozen = build_petl(VIT, dict(type='Frozen'))
    report, record = load(frozen, {})
    assert report['adapter_only'] and record.levelno == logging.INFO


def test_full_checkpoint_missing_tensors_warns():
    full = build_petl(VIT, dict(type='Full'))
    partial = dict(list(full.state_dict().items())[:5])
    report, record = load(full, partial)
    assert not report['adapter_only'] and record.levelno == logging.WARNING


def test_checkpoint_with_nothing_for_the_backbone_warns(lora):
    # e.g. Microsoft's {'model': ...} Swin file given as load_from: not adapter-only, just empty
    host = {k: v for k, v in lora.state_dict().items() if 'petl_' not in k}
    report, _ = load(lora, {f'model.{k}': v for k, v in host.items()})
    assert not report['adapter_only']
    (warning, ) = [r for r in load.records if r.getMessage().startswith('Nothing loaded')]
    assert warning.levelno == logging.WARNING and "init_cfg=dict(type='Pretrained'" in \
        warning.getMessage()
