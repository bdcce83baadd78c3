"""Parameter counts per part of every registered unit, set beside the paper's for its three."""

from models.net import AutocompleteNet, Preset
from models.units import unit_names

PAPER_COUNTS = {
    "gru": {"embedding": 16_200, "recurrent": 4_323_600, "dense": 9_847_986},
    "lstm": {"embedding": 16_200, "recurrent": 5_764_800, "dense": 9_847_986},
    "nlstm": {"embedding": 16_200, "recurrent": 5_764_800, "dense": 9_847_986},
}

WHY_RECURRENT_DIFFERS = {
    "gru": "PyTorch's GRU keeps two bias vectors per layer (b_ih and b_hh, 3H each) where the paper's "
    "TensorFlow cell has one, and its candidate gate applies b_hn inside r * (W_hn h + b_hn): "
    "+3H per layer.",
    "lstm": "PyTorch's LSTM keeps two bias vectors per layer (b_ih and b_hh, 4H each) where the paper's "
    "cell has one; their sum acts as one bias: +4H per layer.",
    "nlstm": "our Nested LSTM has exactly the paper's weights and one bias per depth level.",
}


def describe(preset: Preset) -> str:
    """A table of parameter counts per registered unit and part, with the paper's counts when the preset is the paper's."""
    lines = [f"preset {preset.name}: {preset.description}", ""]
    width = max(len("unit"), *(len(unit) for unit in unit_names()))
    lines.append(f"{'unit':<{width}} {'part':<10} {'ours':>11} {'paper':>11}  note")
    for unit in unit_names():
        config = preset.model_config(unit)
        counts = AutocompleteNet(config).parameter_counts()
        for part, count in counts.items():
            paper = PAPER_COUNTS[unit][part] if preset.name == "paper" and unit in PAPER_COUNTS else None
            if paper is None:
                note = ""
            elif paper == count:
                note = "matches"
            else:
                per_layer = (count - paper) // config.num_layers
                note = f"{count - paper:+,} ({per_layer:+,} per layer): {WHY_RECURRENT_DIFFERS[unit]}"
            paper_text = f"{paper:,}" if paper is not None else "-"
            lines.append(f"{unit:<{width}} {part:<10} {count:>11,} {paper_text:>11}  {note}".rstrip())
        lines.append(f"{unit:<{width}} {'total':<10} {sum(counts.values()):>11,}")
    lines.append("")
    lines.append("embedding counts 27 x H: the padding row (id 0) is fixed at zero and not trained.")
    return "\n".join(lines)
