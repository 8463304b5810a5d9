"""kd_zero: see configs/kd_zero/README.md."""
