"""The adapter to a RapidPro deployment: what any RapidPro v9 speaks, nothing stand-in specific."""
