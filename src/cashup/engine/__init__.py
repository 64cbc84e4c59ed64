"""The execution engine: workers that claim due work, act on venues and apply their reports."""
