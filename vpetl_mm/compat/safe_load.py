"""Load any OpenMMLab checkpoint weights-only, with one-line errors for files that are not one.

torch >= 2.6 loads with ``weights_only=True`` and refuses what mmengine 0.10.7's ``Runner``
saves besides tensors: numpy arrays, scalars and dtypes in ``meta`` and its ``HistoryBuffer``
objects in ``message_hub`` (environment.md). Turning weights-only loading off would let a
checkpoint run code; allow-listing classes process-wide would widen every other ``torch.load``
of the process. Here each load runs in ``torch.serialization.safe_globals`` with exactly the
classes those checkpoints hold, and the one callable they need (``getattr``, for the statistics
methods a ``HistoryBuffer`` pickles) is replaced by a version that resolves nothing else.

:func:`install_safe_checkpoint_loader` makes mmengine's local-file loader (``load_from``,
``--resume``, ``init_cfg=Pretrained``) use :func:`load_checkpoint_file`, through mmengine's own
``CheckpointLoader.register_scheme`` extension point; importing vpetl_mm installs it, so every
entry point whose config imports vpetl_mm (ours, the toolboxes' ``tools/train.py``, ``mim``)
resumes stock checkpoints. Remote files (``http(s)://``, and the ``open-mmlab://``,
``mmcls://``, ``torchvision://`` model-zoo names that resolve to them) go through
:func:`load_url_weights_only`: mmengine fetches them with ``torch.hub.load_state_dict_from_url``,
whose ``weights_only`` defaults to False.
"""
import contextlib
import json
import os
import os.path as osp
import pickle
import zipfile
from typing import Any, Iterator, List, Optional
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader
from mmengine.runner import checkpoint as mm_checkpoint
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

SAFETENSORS_EXT = '.safetensors'
_ZIP_MAGIC = b'PK\x03\x04'
# torch.save(..., _use_new_zipfile_serialization=False) starts with this pickled long
_LEGACY_MAGIC = pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)[:12]
_STATISTICS = {'min', 'max', 'mean', 'current'}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message is one line: file, problem, fix."""


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` for unpickling, limited to a ``HistoryBuffer``'s statistics methods."""
    owner = obj if isinstance(obj, type) else type(obj)
    # the class registers its methods on first instantiation: name the built-in ones too
    if issubclass(owner, HistoryBuffer) and name in _STATISTICS | set(owner._statistics_methods):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'getattr({owner.__name__}, {name!r}) is not allowed')


def _numpy_globals() -> List[Any]:
    """numpy's pickling entry points (``numpy.core`` before numpy 2, ``numpy._core`` after)."""
    names: List[Any] = [np.ndarray, np.dtype]
    multiarray = getattr(getattr(np, '_core', None), 'multiarray', None) or np.core.multiarray
    module = 'numpy._core.multiarray' if hasattr(np, '_core') else 'numpy.core.multiarray'
    for attr in ('_reconstruct', 'scalar'):
        func = getattr(multiarray, attr)
        names.append((func, f'{module}.{attr}'))
        # files written under numpy 1 name numpy.core; numpy 2 still resolves them
        names.append((func, f'numpy.core.multiarray.{attr}'))
    # numpy >= 1.25 pickles a dtype by its class (numpy.dtypes.Float64DType, ...)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        names += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return names


def mm_safe_globals() -> List[Any]:
    """The plain data classes OpenMMLab checkpoints hold, for ``safe_globals``.

    Examples:
        >>> with torch.serialization.safe_globals(mm_safe_globals()):
        ...     ckpt = torch.load('epoch_1.pth', weights_only=True)
    """
    return [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr'), *_numpy_globals()]


@contextlib.contextmanager
def allow_mm_globals() -> Iterator[None]:
    """Scope :func:`mm_safe_globals` to a block (no-op on torch < 2.5, which lacks it)."""
    if not hasattr(torch.serialization, 'safe_globals'):
        yield
        return
    with torch.serialization.safe_globals(mm_safe_globals()):
        yield


def _diagnose(path: str, err: Exception) -> Exception:
    """What is wrong with ``path``, from its first bytes and the loading error.

    Returns a one-line :class:`CheckpointError`, or ``err`` itself where the file is a
    complete checkpoint and the problem lies elsewhere (e.g. ``map_location``).
    """
    with open(path, 'rb') as f:
        head = f.read(len(_LEGACY_MAGIC))
    size = osp.getsize(path)
    text = str(err)
    if not head.startswith(_ZIP_MAGIC) and head != _LEGACY_MAGIC:
        return CheckpointError(
            f'{path}: not a checkpoint ({size} bytes, neither a torch zip archive nor a legacy '
            'torch file); pass the .pth or .safetensors file a run wrote.')
    if isinstance(err, pickle.UnpicklingError) and 'WeightsUnpickler error:' in text:
        reason = text.split('WeightsUnpickler error:', 1)[1].strip().splitlines()[0]
        return CheckpointError(
            f'{path}: holds objects that torch.load(weights_only=True) does not allow '
            f'({reason.split(". ")[0]}); '
            'vpetl_mm never loads pickled code: re-save it as '
            "{'state_dict': model.state_dict()} in the environment that wrote it.")
    truncated = CheckpointError(f'{path}: truncated checkpoint ({size} bytes; its end is '
                                'missing): the copy or the save was interrupted; copy it '
                                'again or use an earlier checkpoint.')
    if head.startswith(_ZIP_MAGIC):  # torch >= 1.6 files are zip archives
        return err if zipfile.is_zipfile(path) else truncated
    # the legacy format (a pickled magic number first): a cut file ends the unpickler early
    ended = isinstance(err, EOFError) or any(w in text for w in ('truncated', 'EOF'))
    return truncated if ended else err


def read_safetensors(path: str) -> dict:
    """A ``.safetensors`` file as a checkpoint: ``{'state_dict': tensors, 'meta': ...}``.

    The metadata (str -> str) holds JSON values (:func:`write_safetensors`); a value that is
    not JSON stays a string.

    Examples:
        >>> read_safetensors('work/epoch_1.safetensors')['meta']['petl']['adapter_only']
        True
    """
    try:
        with safe_open(path, framework='pt', device='cpu') as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
            raw = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f'{path}: not a readable safetensors file ({reason}); it may be '
                              'truncated: copy it again.') from err
    meta = {}
    for key, value in raw.items():
        try:
            meta[key] = json.loads(value)
        except ValueError:
            meta[key] = value
    return {'state_dict': state, 'meta': meta}


def write_safetensors(checkpoint: dict, path: str) -> str:
    """Write ``checkpoint['state_dict']`` to ``path`` with ``meta`` as JSON metadata (no pickle).

    Examples:
        >>> write_safetensors({'state_dict': model.state_dict(), 'meta': {}}, 'w.safetensors')
        'w.safetensors'
    """
    # a copy: safetensors refuses tensors that share storage (tied weights)
    state = {k: v.detach().clone().contiguous() for k, v in checkpoint['state_dict'].items()}
    meta = {k: json.dumps(v, default=_json_default)
            for k, v in (checkpoint.get('meta') or {}).items()}
    save_file(state, path, metadata=meta)
    return path


def _json_default(obj: Any) -> Any:
    """numpy values as JSON numbers and lists; anything else as its string."""
    return obj.tolist() if isinstance(obj, (np.generic, np.ndarray)) else str(obj)


def load_checkpoint_file(path: str, map_location: Any = 'cpu') -> Any:
    """``torch.load(weights_only=True)`` with the mm allow-list, or a ``.safetensors`` file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: not a checkpoint, truncated, or holding disallowed objects.

    Examples:
        >>> load_checkpoint_file('work_dirs/run/epoch_1.pth')['meta']['epoch']
        1
    """
    path = osp.expanduser(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint {path!r} does not exist. Pass the .pth or '
                                '.safetensors file a run wrote (e.g. work_dirs/<config>/'
                                'epoch_100.pth).')
    if path.endswith(SAFETENSORS_EXT):
        return read_safetensors(path)
    try:
        with allow_mm_globals():
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: B902 garbage bytes fail anywhere in the unpickler
        error = _diagnose(path, err)
        if error is err:
            raise
        raise error from err


def load_from_local_weights_only(filename: str, map_location: Any) -> Any:
    """mmengine's local-file scheme, weights-only (its log names it by the ``load_from_`` tail)."""
    return load_checkpoint_file(filename, map_location)


def load_url_weights_only(url: str, model_dir: Optional[str] = None, map_location: Any = None,
                          progress: bool = True, **_: Any) -> Any:
    """mmengine's ``load_url`` (``torch.hub.load_state_dict_from_url``), loading weights-only.

    Downloads to the same cache (``<torch hub dir>/checkpoints/<file name>``) unless the file
    is there, then reads it with :func:`load_checkpoint_file`.

    Examples:
        >>> ckpt = load_url_weights_only('https://download.openmmlab.com/.../vit.pth')
    """
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(urlparse(url).path))
    if not osp.isfile(cached):
        torch.hub.download_url_to_file(url, cached, None, progress=progress)
    return load_checkpoint_file(cached, map_location or 'cpu')


def install_safe_checkpoint_loader() -> None:
    """Route mmengine's local checkpoint loads through :func:`load_checkpoint_file`.

    Examples:
        >>> install_safe_checkpoint_loader()  # done by ``import vpetl_mm``
    """
    if hasattr(torch.serialization, 'safe_globals'):  # older torch: keep mmengine's loader
        CheckpointLoader.register_scheme('', load_from_local_weights_only, force=True)
        # every remote scheme of mmengine (http, model-zoo names) downloads through this name
        mm_checkpoint.load_url = load_url_weights_only
