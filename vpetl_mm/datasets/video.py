"""Video recognition lists in mmaction2's format and in the V-PETL Bench CSV format."""
import logging
import os.path as osp
from contextlib import nullcontext
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from mmaction.datasets import VideoDataset
from mmengine.fileio import exists, get_text
from mmengine.logging import print_log
from mmengine.registry import DefaultScope

from ..registry import DATASETS

ANN_FORMATS = ('auto', 'list', 'csv')
_EXPECTED = dict(
    list='"<video path> <label>" (mmaction2 list file: a path and an integer label separated by '
         'whitespace)',
    csv='"<video path>,<label>" (V-PETL CSV: a path and an integer label separated by a comma, '
        'no header)')


def detect_ann_format(ann_file: str, first_line: str) -> str:
    """``'csv'`` for a ``.csv`` file or a first non-empty line ``<path>,<int>``, else ``'list'``."""
    if ann_file.lower().endswith('.csv'):
        return 'csv'
    if ',' in first_line:
        label = first_line.rsplit(',', 1)[1].strip()
        if label.lstrip('-').isdigit():
            return 'csv'
    return 'list'


@DATASETS.register_module()
class VideoListDataset(VideoDataset):
    """mmaction2's ``VideoDataset`` reading either annotation format, with strict checks.

    Two formats are read, one video per line, blank lines skipped:

    - ``'list'``, mmaction2's list file: ``some/video.mp4 12`` (whitespace separated; the
      ``delimiter`` argument replaces whitespace when it is not ``' '``);
    - ``'csv'``, the V-PETL Bench CSV: ``/home/xbyu/data/20bn-something-something-v2/74225.mp4,12``
      (comma separated, no header, absolute paths as shipped).

    Relative paths are joined with ``data_prefix['video']``; absolute paths are kept, after
    ``path_remap`` has mapped their prefix to a local folder. Every line must hold a path and an
    integer label in ``[0, num_classes)`` (one or more labels when ``multi_class``): a bad line
    raises ``ValueError`` naming the file, the 1-based line number and the line itself.

    Args:
        ann_file: The annotation file (``.txt`` list or ``.csv``), joined with ``data_root``
            when relative.
        pipeline: Data transforms, e.g. ``DecordInit``, ``SampleFrames``, ``DecordDecode`` ...
            Without a default scope (a plain script) they are built in the ``mmaction`` scope.
        num_classes: Number of classes; every label must lie in ``[0, num_classes)``.
        ann_format: ``'list'``, ``'csv'`` or ``'auto'``: csv for a ``.csv`` file or when the
            first non-empty line is ``<path>,<int>``, else list.
        path_remap: Absolute path prefix -> local folder, e.g.
            ``{'/home/xbyu/data/20bn-something-something-v2': 'data/sthv2/videos'}``; a relative
            local folder is joined with ``data_root`` when it is set, never with
            ``data_prefix``. Whole path components match; the longest prefix wins.
        **kwargs: Everything else ``mmaction.datasets.VideoDataset`` takes (``data_prefix``,
            ``multi_class``, ``start_index``, ``modality``, ``test_mode``, ``delimiter``,
            ``data_root``, ``lazy_init`` ...).

    Examples:
        >>> train_dataloader = dict(dataset=dict(
        ...     type='vpetl_mm.VideoListDataset', num_classes=174,
        ...     ann_file='data/sthv2/train.csv',  # the V-PETL CSV, as shipped
        ...     path_remap={'/home/xbyu/data/20bn-something-something-v2': 'data/sthv2/videos'},
        ...     pipeline=[dict(type='DecordInit'),
        ...               dict(type='SampleFrames', clip_len=8, frame_interval=4, num_clips=1),
        ...               dict(type='DecordDecode'), dict(type='Resize', scale=(-1, 224)),
        ...               dict(type='CenterCrop', crop_size=224),
        ...               dict(type='FormatShape', input_format='NCTHW'),
        ...               dict(type='PackActionInputs')]))
        >>> val_dataloader = dict(dataset=dict(
        ...     type='vpetl_mm.VideoListDataset', num_classes=174, test_mode=True,
        ...     ann_file='data/sthv2/sthv2_val_list_videos.txt',  # mmaction2's list file
        ...     data_prefix=dict(video='data/sthv2/videos'), pipeline=...))
    """

    def __init__(self, ann_file: str, pipeline: Sequence[Union[dict, Callable]], *,
                 num_classes: int, ann_format: str = 'auto',
                 path_remap: Optional[Dict[str, str]] = None, **kwargs) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'VideoListDataset: num_classes must be a positive int, got '
                             f'{num_classes!r}.')
        if ann_format not in ANN_FORMATS:
            raise ValueError(f'VideoListDataset: ann_format must be one of {ANN_FORMATS}, got '
                             f'{ann_format!r}.')
        remap = dict(path_remap or {})
        for src, dst in remap.items():
            if not isinstance(src, str) or not isinstance(dst, str) or not src.strip('/'):
                raise ValueError('VideoListDataset: path_remap maps path prefixes (str) to local '
                                 f'folders (str), got {src!r}: {dst!r}.')
        self.ann_format = ann_format
        self.path_remap = remap
        self.detected_format: Optional[str] = None  # 'list' or 'csv' once the file is read
        # a plain script has no default scope: build the transforms in the mmaction scope
        current = DefaultScope.get_current_instance()
        in_scope = current is not None and current.scope_name not in ('mmengine', 'vpetl_mm')
        with nullcontext() if in_scope else DefaultScope.overwrite_default_scope('mmaction'):
            super().__init__(ann_file, list(pipeline), num_classes=num_classes, **kwargs)

    # -- parsing -----------------------------------------------------------------------------
    def _fail(self, lineno: int, line: str, problem: str, fmt: str) -> ValueError:
        return ValueError(f'{self.ann_file}:{lineno}: {problem} in line {lineno}: {line!r}. '
                          f'Expected {_EXPECTED[fmt]}.')

    def _split(self, line: str, fmt: str) -> List[str]:
        if fmt == 'csv':
            return [field.strip() for field in line.split(',')]
        if self.delimiter == ' ':
            return line.split()
        return [field.strip() for field in line.split(self.delimiter)]

    def _parse(self, lineno: int, line: str, fmt: str) -> Tuple[str, List[int]]:
        fields = self._split(line, fmt)
        sep = 'a comma' if fmt == 'csv' else 'whitespace'
        if len(fields) < 2 or not fields[0] or not all(fields[1:]):
            raise self._fail(lineno, line, 'no label (or an empty field)', fmt)
        if len(fields) > 2 and not self.multi_class:
            raise self._fail(lineno, line, f'{len(fields)} fields instead of 2 (paths must not '
                             f'contain {sep}; several labels need multi_class=True)', fmt)
        labels = []
        for field in fields[1:]:
            try:
                labels.append(int(field))
            except ValueError:
                hint = ' (the V-PETL CSV has no header)' if fmt == 'csv' and lineno == 1 else ''
                raise self._fail(lineno, line, f'label {field!r} is not an integer{hint}',
                                 fmt) from None
        for label in labels:
            if not 0 <= label < self.num_classes:
                raise self._fail(lineno, line, f'label {label} is outside [0, '
                                 f'{self.num_classes}) for num_classes={self.num_classes}', fmt)
        return fields[0], labels

    def _remap(self, path: str) -> Tuple[str, bool]:
        """``(path with its longest matching prefix replaced, whether one matched)``."""
        for src in sorted(self.path_remap, key=lambda s: len(s.rstrip('/')), reverse=True):
            prefix = src.rstrip('/')
            if path == prefix or path.startswith(prefix + '/'):
                dst = self.path_remap[src]
                if self.data_root and not osp.isabs(dst):
                    dst = osp.join(self.data_root, dst)
                return dst.rstrip('/') + path[len(prefix):], True
        return path, False

    def load_data_list(self) -> List[dict]:
        """Read the annotation file into ``[dict(filename=..., label=...), ...]``."""
        if not exists(self.ann_file):
            raise FileNotFoundError(f'VideoListDataset: annotation file {self.ann_file} not '
                                    'found (ann_file is joined with data_root when relative).')
        lines = [(n, line.strip()) for n, line in
                 enumerate(get_text(self.ann_file).split('\n'), 1) if line.strip()]
        if not lines:
            raise ValueError(f'{self.ann_file}: no videos, the file is empty. Expected lines '
                             f'{_EXPECTED["list"]} or {_EXPECTED["csv"]}.')
        fmt = self.ann_format
        if fmt == 'auto':
            fmt = detect_ann_format(self.ann_file, lines[0][1])
        self.detected_format = fmt
        prefix = self.data_prefix.get('video') if self.data_prefix else None
        data_list = []
        for lineno, line in lines:
            path, labels = self._parse(lineno, line, fmt)
            path, remapped = self._remap(path)
            if not (remapped or osp.isabs(path) or '://' in path) and prefix:
                path = osp.join(prefix, path)
            label = labels if self.multi_class else labels[0]
            data_list.append(dict(filename=path, label=label))
        if data_list and '://' not in data_list[0]['filename'] \
                and not osp.exists(data_list[0]['filename']):
            print_log(f'VideoListDataset: the first video of {self.ann_file}, '
                      f'{data_list[0]["filename"]}, does not exist; set data_prefix or '
                      'path_remap (e.g. for the absolute paths of the V-PETL CSVs).',
                      logger='current', level=logging.WARNING)
        return data_list
