"""Method-neutral loss pieces shared by the method rooms (pure functions, no registry)."""
from .soft_targets import kd_kl_divergence, soft_cross_entropy

__all__ = ['soft_cross_entropy', 'kd_kl_divergence']
