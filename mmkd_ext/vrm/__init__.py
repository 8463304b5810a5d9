"""vrm: see configs/vrm/README.md."""
