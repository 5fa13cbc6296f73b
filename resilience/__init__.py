"""resilience: chaos and resilience verification for highly available RapidPro installations."""

__version__ = "0.1.0"
