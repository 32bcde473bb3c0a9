"""``vpetl_mm.VideoListDataset``: mmaction2 list files and V-PETL CSVs, strict line errors, path
remapping, and real mp4 decoding through mmaction2's own pipeline on a generated dataset."""
import filecmp
import os.path as osp
import sys
import time

import numpy as np
import pytest
from mmengine.registry import DefaultScope

sys.path.insert(0, osp.dirname(__file__))

from datagen.video import make_video_dataset  # noqa: E402

# the decoder of docs/video.md (and of mmaction2's configs)
INIT, DECODE = dict(type='DecordInit'), dict(type='DecordDecode')
VPETL_SSV2 = '/home/xbyu/data/20bn-something-something-v2'


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_video_dataset(str(tmp_path_factory.mktemp('video')))


def build(ann_file, pipeline=(), **kwargs):
    """Build the dataset as an mmaction2 config does (default scope ``mmaction``)."""
    from mmaction.registry import DATASETS
    kwargs.setdefault('num_classes', 2)
    with DefaultScope.overwrite_default_scope('mmaction'):
        return DATASETS.build(dict(type='vpetl_mm.VideoListDataset', ann_file=ann_file,
                                   pipeline=list(pipeline), **kwargs))


def records(dataset):
    """``[dict(filename, label), ...]`` (``data_list`` itself is emptied by serialization)."""
    infos = (dataset.get_data_info(i) for i in range(len(dataset)))
    return [dict(filename=info['filename'], label=info['label']) for info in infos]


def write(path, text):
    with open(path, 'w') as f:
        f.write(text)
    return str(path)


# -- formats ---------------------------------------------------------------------------------
def test_list_and_csv_give_identical_data_list(data):
    from mmaction.datasets import VideoDataset
    for split in ('train', 'val'):
        as_list = build(data[f'{split}_list'], data_prefix=dict(video=data['video_dir']))
        as_csv = build(data[f'{split}_csv'])
        assert (as_list.detected_format, as_csv.detected_format) == ('list', 'csv')
        expected = [dict(filename=v, label=y)
                    for v, y in zip(data['videos'][split], data['labels'][split])]
        assert records(as_list) == records(as_csv) == expected
        assert all(osp.isfile(d['filename']) for d in records(as_csv))
        # mmaction2's own VideoDataset reads the list file the same way
        ref = VideoDataset(data[f'{split}_list'], [], data_prefix=dict(video=data['video_dir']))
        assert records(ref) == records(as_list)
        info = as_csv.get_data_info(0)
        assert (info['start_index'], info['modality']) == (0, 'RGB')


def test_auto_detection_and_blank_lines(tmp_path):
    csv_in_txt = write(tmp_path / 'ann.txt', '\n\n/v/a.mp4,1\n  \n/v/b c.mp4 , 0\n')
    ds = build(csv_in_txt)
    assert ds.detected_format == 'csv'
    assert records(ds) == [dict(filename='/v/a.mp4', label=1),
                           dict(filename='/v/b c.mp4', label=0)]
    listed = write(tmp_path / 'list.txt', '\na,b.mp4 1\r\nc.mp4\t0\n\n')
    ds = build(listed, data_prefix=dict(video='root'))
    assert ds.detected_format == 'list'
    assert records(ds) == [dict(filename='root/a,b.mp4', label=1),
                           dict(filename='root/c.mp4', label=0)]
    # explicit formats win over detection; .csv decides auto before the content
    assert build(csv_in_txt, ann_format='csv').detected_format == 'csv'
    with pytest.raises(ValueError, match='no label'):
        build(csv_in_txt, ann_format='list')
    with pytest.raises(ValueError, match='no label'):
        build(write(tmp_path / 'list.csv', 'a.mp4 1\n'))
    empty = write(tmp_path / 'empty.txt', '\n \n')
    with pytest.raises(ValueError, match=f'{empty}: no videos'):
        build(empty)
    # mmaction2's ``delimiter`` replaces whitespace in list files (paths with spaces)
    tabbed = write(tmp_path / 'tabbed.txt', 'a b.mp4\t1\n')
    assert records(build(tabbed, delimiter='\t')) == [dict(filename='a b.mp4', label=1)]


def test_multi_class_lists(tmp_path):
    ds = build(write(tmp_path / 'm.txt', 'a.mp4 0 2\nb.mp4 1\n'), num_classes=3,
               multi_class=True, serialize_data=False)
    assert [d['label'] for d in ds.data_list] == [[0, 2], [1]]
    assert ds.get_data_info(0)['label'].tolist() == [1., 0., 1.]  # mmaction2's one-hot
    ds = build(write(tmp_path / 'm.csv', '/v/a.mp4,0,2\n'), num_classes=3, multi_class=True,
               serialize_data=False)
    assert ds.data_list == [dict(filename='/v/a.mp4', label=[0, 2])]


def test_path_remap(tmp_path, data):
    lines = [f'{VPETL_SSV2}/{osp.relpath(v, data["video_dir"])},{y}\n'
             for v, y in zip(data['videos']['train'], data['labels']['train'])]
    shipped = write(tmp_path / 'train.csv', ''.join(lines))
    ds = build(shipped, path_remap={VPETL_SSV2 + '/': data['video_dir']})
    assert [d['filename'] for d in records(ds)] == data['videos']['train']
    # a relative local root is joined with data_root; the longest prefix wins; only whole
    # path components match; unmatched absolute paths are kept
    other = write(tmp_path / 'other.csv', ''.join([
        f'{VPETL_SSV2}/1.mp4,0\n', f'{VPETL_SSV2}/sub/2.mp4,1\n', f'{VPETL_SSV2}-x/3.mp4,0\n',
        '/elsewhere/4.mp4,1\n']))
    ds = build(other, data_root=str(tmp_path),
               path_remap={VPETL_SSV2: 'data/sthv2/videos', VPETL_SSV2 + '/sub': '/mnt/sub'})
    assert [d['filename'] for d in records(ds)] == [
        osp.join(str(tmp_path), 'data/sthv2/videos/1.mp4'), '/mnt/sub/2.mp4',
        f'{VPETL_SSV2}-x/3.mp4', '/elsewhere/4.mp4']
    # without data_root a relative local root is taken as is (not joined with data_prefix)
    ds = build(other, data_prefix=dict(video='ignored'), path_remap={VPETL_SSV2: 'vids'})
    assert [d['filename'] for d in records(ds)][:2] == ['vids/1.mp4', 'vids/sub/2.mp4']
    with pytest.raises(ValueError, match='path_remap'):
        build(other, path_remap={'/': 'data'})


# -- errors ----------------------------------------------------------------------------------
ERRORS = [  # file name, content, bad line number, what the message says
    ('no_label.txt', 'a.mp4 0\n\nb.mp4\n', 3, 'no label'),
    ('no_label.csv', '/v/a.mp4,0\n/v/b.mp4,\n', 2, 'no label'),
    ('not_int.txt', 'a.mp4 0\nb.mp4 one\n', 2, "label 'one' is not an integer"),
    ('float.csv', '/v/a.mp4,1.0\n', 1, "label '1.0' is not an integer"),
    ('header.csv', 'path,label\n/v/a.mp4,0\n', 1, 'no header'),
    ('three.txt', 'a.mp4 0\nb.mp4 1 0\n', 2, '3 fields instead of 2'),
    ('three.csv', '/v/a.mp4,0\n/v/b,c.mp4,1\n', 2, '3 fields instead of 2'),
    ('range.txt', 'a.mp4 0\n\nb.mp4 2\n', 3, 'label 2 is outside [0, 2) for num_classes=2'),
    ('negative.csv', '/v/a.mp4,-1\n', 1, 'label -1 is outside [0, 2) for num_classes=2'),
]


@pytest.mark.parametrize('name,content,lineno,problem', ERRORS, ids=[e[0] for e in ERRORS])
def test_line_errors_name_file_line_and_format(tmp_path, name, content, lineno, problem):
    ann_file = write(tmp_path / name, content)
    with pytest.raises(ValueError) as err:
        build(ann_file)
    msg = str(err.value)
    bad = content.splitlines()[lineno - 1].strip()
    assert f'{ann_file}:{lineno}:' in msg and f'line {lineno}: {bad!r}' in msg
    assert problem in msg
    expected = 'V-PETL CSV' if name.endswith('.csv') else 'mmaction2 list file'
    assert 'Expected "<video path>' in msg and expected in msg


def test_argument_errors(tmp_path):
    missing = str(tmp_path / 'nowhere' / 'train.csv')
    with pytest.raises(FileNotFoundError, match=missing):
        build(missing)
    ok = write(tmp_path / 'ok.txt', 'a.mp4 0\n')
    from vpetl_mm.datasets import VideoListDataset
    with pytest.raises(TypeError, match='num_classes'):  # required
        VideoListDataset(ok, [])
    for bad in (0, -3, 2.0, True):
        with pytest.raises(ValueError, match='num_classes'):
            build(ok, num_classes=bad)
    with pytest.raises(ValueError, match='ann_format'):
        build(ok, ann_format='tsv')


# -- decoding --------------------------------------------------------------------------------
def test_three_crop_test_pipeline_shape(data):
    pipeline = [INIT, dict(type='SampleFrames', clip_len=8, frame_interval=1, num_clips=4,
                           test_mode=True),
                DECODE, dict(type='Resize', scale=(-1, 32)), dict(type='ThreeCrop', crop_size=32),
                dict(type='FormatShape', input_format='NCTHW'), dict(type='PackActionInputs')]
    for ann, kw in ((data['val_csv'], {}),
                    (data['val_list'], dict(data_prefix=dict(video=data['video_dir'])))):
        ds = build(ann, pipeline, test_mode=True, **kw)
        for idx in (0, 1):
            sample = ds[idx]
            assert tuple(sample['inputs'].shape) == (12, 3, 8, 32, 32)
            assert sample['data_samples'].gt_label.item() == data['labels']['val'][idx]


def test_generated_label_is_learnable(tmp_path):
    """The direction of the brightness centre of mass over the decoded frames is the label."""
    data = make_video_dataset(str(tmp_path), num_train=8, num_val=4, num_classes=4, seed=3)
    pipeline = [INIT, dict(type='SampleFrames', clip_len=data['frames'], frame_interval=1,
                           num_clips=1, test_mode=True),
                DECODE, dict(type='FormatShape', input_format='NCTHW'),
                dict(type='PackActionInputs')]
    for split in ('train', 'val'):
        ds = build(data[f'{split}_csv'], pipeline, num_classes=4, test_mode=split == 'val')
        assert len(ds) == len(data['labels'][split])
        for idx, label in enumerate(data['labels'][split]):
            clip = ds[idx]['inputs'][0].float().mean(0).numpy()  # (T, H, W) brightness
            assert clip.shape == (data['frames'], data['size'], data['size'])
            weight = np.clip(clip - 128., 0, None)
            total = weight.sum(axis=(1, 2))
            assert (total > 0).all()
            ys, xs = np.mgrid[:data['size'], :data['size']]
            cx = (weight * xs).sum(axis=(1, 2)) / total
            cy = (weight * ys).sum(axis=(1, 2)) / total
            dx, dy = cx[-1] - cx[0], cy[-1] - cy[0]
            predicted = (0 if dx > 0 else 1) if abs(dx) > abs(dy) else (2 if dy > 0 else 3)
            assert predicted == label, (split, idx, dx, dy)
            assert max(abs(dx), abs(dy)) > data['size'] / 2


def test_generator_is_deterministic_and_fast(tmp_path):
    start = time.perf_counter()
    a = make_video_dataset(str(tmp_path / 'a'))
    assert time.perf_counter() - start < 2.
    b = make_video_dataset(str(tmp_path / 'b'))
    assert a['labels'] == b['labels'] == dict(train=[0, 1] * 4, val=[0, 1] * 2)
    for va, vb in zip(a['videos']['train'] + a['videos']['val'],
                      b['videos']['train'] + b['videos']['val']):
        assert filecmp.cmp(va, vb, shallow=False)
    assert open(a['train_list']).read() == open(b['train_list']).read()
    assert open(a['train_list']).readline() == 'train/0000.mp4 0\n'
    assert open(a['val_csv']).readline() == f'{a["video_dir"]}/val/0000.mp4,0\n'
