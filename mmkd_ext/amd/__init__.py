"""amd: see configs/amd/README.md."""
