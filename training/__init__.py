"""The offline package: corpus, dataset, training, evaluation and export (`python -m training --help`)."""
