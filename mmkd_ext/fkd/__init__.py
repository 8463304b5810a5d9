"""fkd: see configs/fkd/README.md."""
