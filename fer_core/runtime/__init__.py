"""The machine a stage runs on: device choice (cpu / cuda / mps), torch threads, seeding,
autocast, machine facts for reports, and progress bars.

May import: torch, the standard library. No other fer_core package.
"""
