"""Attention maps of a trained (PETL) ViT overlaid on its input images.

``python tools/visualize/attention_map.py CONFIG CHECKPOINT (--images IMG ... | --split test
--num N) --out DIR [--layer -1] [--no-rollout]``

Per image: DIR/<k>_<name>.png (the image, the CLS-to-patch attention of one block averaged
over heads, and the attention rollout over all blocks), the raw maps on the patch grid as
DIR/<k>_<name>_layer<i>.npy and DIR/<k>_<name>_rollout.npy, and DIR/index.json. Adapter-only
checkpoints load as in tools/test.py. See docs/visualize.md.
"""
import argparse
import os.path as osp
import sys
import tempfile

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from mmengine.config import DictAction  # noqa: E402

from vpetl_mm.visualization import (image_batches, limited, load_trained_model,  # noqa: E402
                                    save_attention_maps, split_loader)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Attention maps of a trained PETL ViT')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint (full or adapter-only)')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--images', nargs='+', help='image files')
    source.add_argument('--split', choices=['train', 'val', 'test'],
                        help="images of this split of the config's data (test pipeline)")
    parser.add_argument('--num', type=int, default=8, help='with --split: the first N images')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--layer', type=int, default=-1,
                        help='block whose CLS attention is shown (default -1: the last)')
    parser.add_argument('--rollout', action=argparse.BooleanOptionalAction, default=True,
                        help='also show the attention rollout (default: on)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--work-dir', help='runner log folder (default: a temporary one)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config options, key=value pairs')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model, cfg = load_trained_model(args.config, args.checkpoint, args.work_dir or tmp,
                                        args.cfg_options)
        class_names = None
        if args.images:
            batches = image_batches(cfg, args.images, args.batch_size)
        else:
            loader = split_loader(cfg, args.split, args.batch_size)
            class_names = loader.dataset.metainfo.get('classes', None)
            batches = limited(loader, args.num)
        records = save_attention_maps(model, batches, args.out, layer=args.layer,
                                      rollout=args.rollout, class_names=class_names)
    print(f'attention maps of {len(records)} images in {args.out}')


if __name__ == '__main__':
    main()
