"""acmkd: see configs/acmkd/README.md."""
