"""The image check's figures (image size, build time, time to healthy), printed at the end of its run.

Loaded by any pytest run that reaches tests/image/; prints nothing unless checks.py recorded figures
(tests/check_figures.py, shared with the deployment check).
"""

from check_figures import figure_report

pytest_configure, figures, pytest_terminal_summary = figure_report("container image figures", "whole image check")
