"""Export a trained PETL model: ``python tools/export.py CONFIG CHECKPOINT OUT [--name NAME]``.

``--format`` picks the file type: ``pth`` (default), ``safetensors`` (the same export as
``OUT/<name>.safetensors``: tensors without pickle) or ``peft`` (``OUT/adapter_config.json`` +
``OUT/adapter_model.safetensors`` that ``peft.PeftModel.from_pretrained(timm_model, OUT)``
loads: a LoRA or Peft method on a timm ViT host). ``python tools/export.py CONFIG --from-peft
DIR OUT`` imports such a peft adapter into CONFIG's model (an adapter-only checkpoint).

Mergeable methods (LoRA, SSF, RepAdapter, Hydra, FacT, GPS; BitFit, LNTune, Partial, Full,
Frozen trivially) are folded into the backbone: ``OUT/<name>.pth`` is a plain checkpoint that
the stock mmpretrain / mmdet / mmseg / mmaction2 model built from ``OUT/<name>.py`` (no vpetl_mm)
loads strictly. Other methods give the adapter-only checkpoint and the config that rebuilds the
model with vpetl_mm. ``OUT/<name>.json`` says what was written and why. See docs/export.md.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmengine.config import DictAction  # noqa: E402

from vpetl_mm.apis.export import FORMATS, export_model, import_from_peft  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Merge and export a PETL model (vpetl_mm)')
    parser.add_argument('config', help='the training config (with vpetl_mm.PETLBackbone)')
    parser.add_argument('checkpoint', nargs='?',
                        help='a checkpoint of it (full or adapter-only); not with --from-peft')
    parser.add_argument('out', help='output folder')
    parser.add_argument('--format', choices=FORMATS, default='pth',
                        help='pth (default), safetensors (no pickle), or peft (adapter_config.json'
                        ' + adapter_model.safetensors for peft.PeftModel.from_pretrained; LoRA /'
                        ' Peft on a timm ViT host)')
    parser.add_argument('--from-peft', metavar='DIR',
                        help='import the peft adapter folder DIR into the config\'s model (writes'
                        ' its adapter-only checkpoint; --format pth or safetensors)')
    parser.add_argument('--name', help='file stem of the outputs (default: the config name)')
    parser.add_argument('--no-merge', action='store_true',
                        help='write the adapter-only form even if the methods are mergeable')
    parser.add_argument('--verify-shape', type=int, nargs='+', metavar='N',
                        help='check the export on a random input of this shape (after the '
                        'data preprocessor), e.g. 1 3 224 224; video: 1 1 3 16 224 224')
    parser.add_argument('--skip-stock-check', action='store_true',
                        help='do not load a merged export into the stock model in a '
                        'subprocess without vpetl_mm')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config options, key=value pairs (xxx=yyy)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if (args.checkpoint is None) == (args.from_peft is None):
        raise SystemExit('export failed: give a CHECKPOINT to export, or --from-peft DIR to '
                         'import (not both).')
    try:
        if args.from_peft:
            result = import_from_peft(args.config, args.from_peft, args.out, name=args.name,
                                      cfg_options=args.cfg_options, fmt=args.format)
        else:
            result = export_model(args.config, args.checkpoint, args.out, name=args.name,
                                  cfg_options=args.cfg_options, merge=not args.no_merge,
                                  verify_shape=args.verify_shape,
                                  stock_check=not args.skip_stock_check, fmt=args.format)
    except (FileNotFoundError, ValueError, RuntimeError) as err:  # messages name the fix
        raise SystemExit(f'export failed: {err}')
    info = result.info
    if result.mode == 'peft':
        print(f'peft ({info["peft_type"]}): {result.config}, {result.checkpoint}, '
              f'{result.manifest}; PeftModel.from_pretrained matches: max |diff| '
              f'{info["max_abs_diff"]:.3g}')
        return
    if 'peft' in info:
        print(f'imported {info["peft"]["peft_type"]} from {args.from_peft}: max |diff| to '
              f'PeftModel.from_pretrained {info["peft"]["max_abs_diff"]:.3g}')
    print(f'{result.mode}: {result.checkpoint} ({info["tensors"]} tensors), {result.config}, '
          f'{result.manifest}')
    for line in info.get('why_not_merged', []):
        print(f'  not merged: {line}')
    check = info.get('stock_check')
    if check:
        print(f'  stock {check["model"]} ({check["backbone"]}) loaded it strictly without '
              'vpetl_mm' + (f'; max |diff| {check["max_abs_diff"]:.3g}'
                            if 'max_abs_diff' in check else ''))
    elif 'max_abs_diff' in info:
        print(f'  rebuilt model matches: max |diff| {info["max_abs_diff"]:.3g}')
    print(json.dumps(info.get('stock_config_changes', []), indent=2))


if __name__ == '__main__':
    main()
