"""The 24 image benchmark datasets (VTAB-1k 19, FGVC 5) on tiny generated folders.

Each dataset is built from its generated config (``configs/linear/vit-b_<key>.py``) through
mmpretrain's registry with ``data_root`` pointed at a folder written in the real layout; the
class count must agree with the config's head and every label must fall in range.
"""
import json
import os.path as osp
import sys

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS

import vpetl_mm  # noqa: F401  (registers vpetl_mm.VTAB1k / vpetl_mm.FGVC)
from vpetl_mm.datasets import (FGVC, FGVC_DATASETS, VTAB_DATASETS, VTAB_TASKS, VTAB1k,
                               write_vtab1k)

sys.path.insert(0, osp.dirname(__file__))

from datagen.fgvc import class_ids, write_fgvc  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# methods.md: the 19 VTAB-1k class counts in the published column order
VTAB_COUNTS = (100, 102, 47, 102, 37, 10, 397, 2, 10, 45, 5, 8, 6, 6, 4, 16, 16, 18, 9)
FGVC_COUNTS = dict(cub=200, nabirds=555, flowers=102, dogs=120, cars=196)


def _write_vtab(root: str, num_classes: int) -> str:
    """One 4x4 image per class in each split (labels 0 .. num_classes - 1)."""
    labels = np.arange(num_classes)
    images = np.zeros((num_classes, 4, 4, 3), np.uint8) + (labels * 7 % 256)[:, None, None, None]
    idx = list(range(num_classes))
    return write_vtab1k(root, images, labels, dict(train=idx, val=idx, test=idx))


def test_tables_match_methods_md():
    assert tuple(VTAB_TASKS[f] for f in VTAB_DATASETS.values()) == VTAB_COUNTS
    assert {v[0]: v[2] for v in FGVC_DATASETS.values()} == FGVC_COUNTS
    assert len(VTAB_DATASETS) + len(FGVC_DATASETS) == 24


@pytest.mark.parametrize('key', [*VTAB_DATASETS, *FGVC_DATASETS])
def test_dataset_from_generated_config(key, tmp_path):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'linear', f'vit-b_{key}.py'))
    num_classes = cfg.model.head.num_classes
    assert cfg.data_preprocessor.num_classes == num_classes
    if key in VTAB_DATASETS:
        assert num_classes == VTAB_TASKS[VTAB_DATASETS[key]]
        root = _write_vtab(str(tmp_path / VTAB_DATASETS[key]), num_classes)
    else:
        name, folder, classes, _ = FGVC_DATASETS[key]
        assert num_classes == classes
        root = write_fgvc(str(tmp_path / folder), name)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        for split in ('train', 'val', 'test'):
            dataset_cfg = cfg[f'{split}_dataloader'].dataset.copy()
            dataset_cfg.data_root = root
            dataset = DATASETS.build(dataset_cfg)
            labels = sorted({dataset.get_data_info(i)['gt_label'] for i in range(len(dataset))})
            assert len(dataset.metainfo['classes']) == num_classes
            assert labels == list(range(num_classes)), f'{key} {split}'
            sample = dataset[0]  # the split's real pipeline (RandAugment where augmented)
            assert tuple(sample['inputs'].shape) == (3, 224, 224)


def test_vtab_cifar100_folder_and_task(tmp_path):
    root = _write_vtab(str(tmp_path / 'cifar100'), 100)
    assert len(VTAB1k(root, split='test').metainfo['classes']) == 100
    other = _write_vtab(str(tmp_path / 'somewhere'), 100)
    assert VTAB1k(other, split='test', task='cifar').num_classes == 100
    with pytest.raises(ValueError, match="Unknown VTAB task 'cifar10'"):
        VTAB1k(other, task='cifar10')


def test_vtab_errors_name_the_file_and_line(tmp_path):
    root = _write_vtab(str(tmp_path / 'kitti'), 4)
    with open(osp.join(root, 'test.txt'), 'a') as f:
        f.write('images/test/000000.png 4\n')  # kitti has 4 classes: 0..3
    with pytest.raises(ValueError, match=r'test\.txt:5: label 4 is outside \[0, 3\]'):
        VTAB1k(root, split='test')
    with open(osp.join(root, 'val200.txt'), 'a') as f:
        f.write('images/val200/missing.png 1\n')
    with pytest.raises(FileNotFoundError, match=r'val200\.txt:5: image .*missing\.png not found '
                                                r'\(1 of 5'):
        VTAB1k(root, split='val')
    with pytest.raises(FileNotFoundError, match='train800.txt not found'):
        VTAB1k(str(tmp_path / 'dtd'))


def test_fgvc_mapping_is_contiguous_sorted_and_shared(tmp_path):
    root = write_fgvc(str(tmp_path / 'cub'), 'cub', per_split=dict(train=2, val=1, test=1))
    ids = class_ids(200)
    by_split = {}
    for split in ('train', 'val', 'trainval', 'test'):
        dataset = FGVC(root, 'cub', split=split)
        by_split[split] = {osp.basename(osp.dirname(d['img_path'])): d['gt_label']
                           for d in dataset.load_data_list()}
        assert len(dataset) == dict(train=400, val=200, trainval=600, test=200)[split]
    # sparse ids 1, 4, 7 ... map to 0, 1, 2 ... in id order, the same in every split
    for split_labels in by_split.values():
        assert split_labels['001.class_1'] == 0 and split_labels['004.class_4'] == 1
        assert split_labels == by_split['train']
    assert dataset.metainfo['classes'][:2] == (str(ids[0]), str(ids[1]))
    assert osp.basename(dataset.image_root) == 'images'


def test_fgvc_image_roots(tmp_path):
    for name, expected in (('dogs', 'Images'), ('cars', 'cars'), ('flowers', 'flowers')):
        root = write_fgvc(str(tmp_path / name), name)
        assert osp.basename(FGVC(root, name, split='val').image_root) == expected


def test_fgvc_errors(tmp_path):
    root = write_fgvc(str(tmp_path / 'dogs'), 'dogs')
    with pytest.raises(ValueError, match="FGVC name must be one of"):
        FGVC(root, 'aircraft')
    with pytest.raises(ValueError, match='120 class ids but FGVC .cars. has 196'):
        FGVC(root, 'cars')  # the wrong dataset for this folder
    with pytest.raises(FileNotFoundError, match='Images not found'):
        FGVC(str(tmp_path / 'empty'), 'dogs')
    with open(osp.join(root, 'test.json')) as f:
        anno = json.load(f)
    anno['999.class_x/ghost.jpg'] = 1
    with open(osp.join(root, 'test.json'), 'w') as f:
        json.dump(anno, f)
    with pytest.raises(FileNotFoundError, match=r'1 image\(s\) listed in .*test\.json are '
                                                r'missing, e\.g\. .*ghost\.jpg'):
        FGVC(root, 'dogs', split='test')
    FGVC(root, 'dogs', split='train')  # other splits still load
    with open(osp.join(root, 'val.json'), 'w') as f:
        f.write('{"a.jpg": ')
    with pytest.raises(ValueError, match=r'val\.json is not valid json.*XiN0919/FGVC'):
        FGVC(root, 'dogs')
    with open(osp.join(root, 'val.json'), 'w') as f:
        json.dump({'a.jpg': 'seven'}, f)
    with pytest.raises(ValueError, match="class id of 'a.jpg' is 'seven'"):
        FGVC(root, 'dogs')
    (tmp_path / 'dogs' / 'val.json').unlink()
    with pytest.raises(FileNotFoundError, match=r'val\.json not found.*XiN0919/FGVC'):
        FGVC(root, 'dogs')
