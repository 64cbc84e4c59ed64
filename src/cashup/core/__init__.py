"""The pure domain core: no I/O, no frameworks, importable and testable on its own."""
