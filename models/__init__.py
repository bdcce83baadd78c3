"""Network code shared by training and serving, and the bundled checkpoints."""
