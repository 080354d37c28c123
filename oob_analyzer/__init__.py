"""oob-analyzer: an out-of-band traffic-mirror analyzer.

This package holds the detection core (`oob_analyzer.detection`), the pipeline that wires
capture -> reassembly -> detection -> storage (`oob_analyzer.pipeline`) and the command
line (`oob_analyzer.cli`).
"""
