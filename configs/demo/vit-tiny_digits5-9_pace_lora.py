# PACE on LoRA: the LoRA demo model wrapped by vpetl_mm.PACE (multiplicative noise on the LoRA
# updates, loss_pace between two perturbed passes); PACE's VTAB-1k example values, lambda 1 and
# sigma 1.2 (MaxwellYaoNi/PACE Vision/README.md). The optimiser and schedule are LoRA's.
_base_ = ['./vit-tiny_digits5-9_lora.py']
model = dict(_delete_=True, type='vpetl_mm.PACE', lambda_=1., sigma=1.2, model={{_base_.model}})
