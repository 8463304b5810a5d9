"""Method-neutral loss pieces shared by the method rooms (pure functions, no registry)."""
from .precision import fp32_loss, to_fp32
from .soft_targets import kd_kl_divergence, soft_cross_entropy

__all__ = ['soft_cross_entropy', 'kd_kl_divergence', 'fp32_loss', 'to_fp32']
