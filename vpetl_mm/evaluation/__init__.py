"""Evaluation helpers: PPT, and the table of primary metrics it is reported for."""
from .ppt import PPT_C, ppt

# metric key printed by the host evaluator -> the factor that turns it into a fraction
PRIMARY_METRICS = {
    'accuracy/top1': 100.,  # mmpretrain Accuracy (percent)
    'acc/top1': 1.,  # mmaction2 AccMetric (fraction)
    'coco/bbox_mAP': 1.,  # mmdet CocoMetric
    'coco/segm_mAP': 1.,
    'pascal_voc/mAP': 1.,  # mmdet VOCMetric
    'mIoU': 100.,  # mmseg IoUMetric (percent)
}

__all__ = ['ppt', 'PPT_C', 'PRIMARY_METRICS']
