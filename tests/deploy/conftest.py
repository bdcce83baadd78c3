"""The deployment check's figures (time to ready, the load's rate and errors, the cache's hit ratio), printed at the end.

Loaded by any pytest run that reaches tests/deploy/; prints nothing unless checks.py recorded figures
(tests/check_figures.py, shared with the image check).
"""

from check_figures import figure_report

pytest_configure, figures, pytest_terminal_summary = figure_report("deployment figures", "whole deployment check")
