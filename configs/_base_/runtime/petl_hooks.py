# vpetl_mm's hooks, declared by the config so that every entry point that builds a Runner from
# it runs them: our tools/train.py, each toolbox's own tools/train.py and tools/test.py (what
# `mim train` / `mim test` run), or a script calling `Runner.from_cfg(cfg)`. Every setting base
# under configs/_base_/{image,dense,video}, the demo base and every example inherits this file
# next to its own `custom_imports = dict(imports=['vpetl_mm'], allow_failed_imports=False)`,
# which registers them.
#
# PETLCheckpointHook does not replace `default_hooks.checkpoint` (mmengine's CheckpointHook, which
# decides when to save): it slims every checkpoint that hook writes to the trained tensors
# (adapter-only) and makes it load weights-only; it also undoes that on `--resume` / `load_from`.
# PETLCalibrationHook runs SCT's / GPS's selection pass before training and does nothing for the
# other methods. A config that needs other options for one of these hooks (GPS: views=2)
# replaces that entry and keeps the others:
#     custom_hooks = [h for h in _base_.custom_hooks if h.type != 'vpetl_mm.PETLCalibrationHook']
#     custom_hooks.append(dict(type='vpetl_mm.PETLCalibrationHook', views=2))
# and one that adds a hook of its own extends the list: `custom_hooks = _base_.custom_hooks +
# [dict(type='EMAHook')]` (a plain `custom_hooks = [...]` replaces the whole list; our
# tools/train.py then adds the missing vpetl_mm hooks back, other entry points do not).
# Same list, same order as vpetl_mm.apis.runtime.DEFAULT_PETL_HOOKS (tests/test_entry_points.py).
custom_hooks = [
    dict(type='vpetl_mm.PETLCheckpointHook'),  # adapter-only, weights-only checkpoints
    dict(type='vpetl_mm.PETLCalibrationHook'),  # SCT / GPS selection pass (else a no-op)
    dict(type='vpetl_mm.PETLReportHook'),  # <work_dir>/petl_report.json
    dict(type='vpetl_mm.EfficiencyHook'),  # time per iteration, peak memory
    dict(type='vpetl_mm.PPTHook'),  # <metric>_ppt next to every evaluation
    # load_from of a plain backbone file ({'model': ...}, e.g. the VideoMAE pretrain)
    dict(type='vpetl_mm.PretrainedLoadFromHook'),
]
