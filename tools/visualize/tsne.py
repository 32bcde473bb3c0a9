"""t-SNE of the pre-head features of test images, one panel per trained model.

``python tools/visualize/tsne.py CONFIG1 CKPT1 [CONFIG2 CKPT2 ...] [--names A B ...]
--split test --out fig.png [--num N] [--perplexity 30] [--seed 0]``

Writes fig.png and fig.svg (points coloured by class, the models side by side) and fig.npz
(``names``; per model i: ``embedding_i`` (N, 2), ``labels_i``, ``features_i``). Adapter-only
checkpoints load as in tools/test.py. See docs/visualize.md.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile

import numpy as np

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from mmengine.config import DictAction  # noqa: E402

from vpetl_mm.visualization import (extract_features, limited, load_trained_model,  # noqa
                                    plot_embeddings, split_loader, tsne_embed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='t-SNE of pre-head features of PETL models')
    parser.add_argument('models', nargs='+', metavar='CONFIG CHECKPOINT',
                        help='pairs of config file and checkpoint (full or adapter-only)')
    parser.add_argument('--names', nargs='+', help='panel titles (default: config names)')
    parser.add_argument('--split', choices=['train', 'val', 'test'], default='test')
    parser.add_argument('--num', type=int, help='only the first N samples of the split')
    parser.add_argument('--out', required=True, help='figure path (.png; .svg and .npz too)')
    parser.add_argument('--perplexity', type=float, default=30.,
                        help='t-SNE perplexity (clipped to N - 1)')
    parser.add_argument('--seed', type=int, default=0, help='t-SNE random_state')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config options (all models), key=value pairs')
    args = parser.parse_args()
    if len(args.models) % 2:
        parser.error('give CONFIG CHECKPOINT pairs: an odd number of paths was given.')
    pairs = list(zip(args.models[::2], args.models[1::2]))
    args.names = args.names or [osp.splitext(osp.basename(c))[0] for c, _ in pairs]
    if len(args.names) != len(pairs):
        parser.error(f'{len(args.names)} --names for {len(pairs)} models.')
    args.pairs = pairs
    return args


def main() -> None:
    args = parse_args()
    embeddings, labels, arrays, class_names = [], [], {}, None
    for i, ((config, checkpoint), name) in enumerate(zip(args.pairs, args.names)):
        with tempfile.TemporaryDirectory() as tmp:
            model, cfg = load_trained_model(config, checkpoint, tmp, args.cfg_options)
            loader = split_loader(cfg, args.split, args.batch_size)
            class_names = class_names or loader.dataset.metainfo.get('classes', None)
            feats, labs = extract_features(model, limited(loader, args.num))
        emb = tsne_embed(feats, random_state=args.seed, perplexity=args.perplexity)
        print(f'{name}: {len(feats)} samples, features {feats.shape[1]}-d')
        embeddings.append(emb)
        labels.append(labs)
        arrays.update({f'embedding_{i}': emb, f'labels_{i}': labs, f'features_{i}': feats})
        del model
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    paths = plot_embeddings(embeddings, labels, args.names, args.out, class_names)
    npz = osp.splitext(args.out)[0] + '.npz'
    np.savez(npz, names=np.asarray(args.names), perplexity=args.perplexity, seed=args.seed,
             **arrays)
    print('wrote ' + ', '.join(paths + [npz]))


if __name__ == '__main__':
    main()
