"""ML classifier controllers (paper §4.4): features, labels, models, training, artefacts, evaluation."""
