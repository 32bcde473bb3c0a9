"""PPT, the V-PETL Bench score that trades accuracy against trainable parameters."""
import math

PPT_C = 1e7


def ppt(metric: float, params: int, c: float = PPT_C) -> float:
    """Performance-Parameter Trade-off: ``M * exp(-log10(P / C + 1))``.

    Args:
        metric: The task metric M as a fraction in [0, 1] (e.g. 0.7225 for 72.25% top-1).
        params: Trainable backbone parameters P (head excluded), as a raw count.
        c: Normaliser C. Defaults to 1e7, as published.

    Examples:
        >>> round(ppt(0.7170, 2_380_000), 4)  # LST on VTAB-1k
        0.6535
    """
    if not 0. <= metric <= 1.:
        raise ValueError(f'PPT expects the metric as a fraction in [0, 1], got {metric}. '
                         'Divide percentages by 100.')
    if params < 0:
        raise ValueError(f'params must be >= 0, got {params}.')
    return metric * math.exp(-math.log10(params / c + 1.))
