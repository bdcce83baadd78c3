import json

import pytest
import torch
from safetensors.torch import save_file

from models.checkpoint import FORMAT, CheckpointError, load_checkpoint, load_vocabulary, read_metadata, save_checkpoint
from models.net import AutocompleteNet, ModelConfig
from models.vocab import Vocabulary

CONFIGS = {
    "gru": ModelConfig(unit="gru", hidden_size=6, num_layers=2, num_words=12),
    "lstm": ModelConfig(unit="lstm", hidden_size=6, num_layers=2, num_words=12),
    "nlstm": ModelConfig(unit="nlstm", hidden_size=6, num_layers=1, depth=2, num_words=12),
    # The vanilla RNN, a unit of another package (examples/vanilla-rnn), round-trips like the built-in ones.
    "rnn": ModelConfig(unit="rnn", hidden_size=6, num_layers=2, num_words=12),
}


@pytest.mark.parametrize("unit", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_round_trip_keeps_weights_and_config(tmp_path, unit, dtype):
    torch.manual_seed(0)
    net = AutocompleteNet(CONFIGS[unit])
    save_checkpoint(net, tmp_path / f"{unit}.safetensors", dtype=dtype)
    loaded = load_checkpoint(tmp_path / f"{unit}.safetensors")
    assert loaded.config == net.config
    for name, tensor in net.state_dict().items():
        assert loaded.state_dict()[name].dtype == torch.float32
        torch.testing.assert_close(loaded.state_dict()[name], tensor.to(dtype).float())
    metadata = read_metadata(tmp_path / f"{unit}.safetensors")
    assert metadata["format"] == FORMAT
    assert json.loads(metadata["config"])["unit"] == unit
    assert (tmp_path / f"{unit}.safetensors").stat().st_mode & 0o777 == 0o644, "a server running as another user must read it"


def test_tensor_names_are_the_documented_ones(tmp_path):
    names = set(AutocompleteNet(CONFIGS["nlstm"]).state_dict())
    assert names == {"embedding.weight", "output.weight", "output.bias", "rnn.layers.0.cells.0.weight",
                     "rnn.layers.0.cells.0.bias", "rnn.layers.0.cells.1.weight", "rnn.layers.0.cells.1.bias"}
    gru = set(AutocompleteNet(CONFIGS["gru"]).state_dict())
    assert {"rnn.weight_ih_l0", "rnn.weight_hh_l1", "rnn.bias_ih_l1", "rnn.bias_hh_l0"} <= gru
    nlstm = AutocompleteNet(CONFIGS["nlstm"]).state_dict()
    assert nlstm["rnn.layers.0.cells.0.weight"].shape == (24, 12)
    vanilla = AutocompleteNet(CONFIGS["rnn"]).state_dict()
    assert vanilla["rnn.weight_hh_l1"].shape == (6, 6) and vanilla["rnn.bias_ih_l0"].shape == (6,)


def test_a_unit_that_is_not_installed_is_named_with_how_to_install_it(tmp_path):
    net = AutocompleteNet(CONFIGS["gru"])
    tensors = {name: tensor.contiguous() for name, tensor in net.state_dict().items()}
    config = {**net.config.to_dict(), "unit": "transformer"}
    save_file(tensors, str(tmp_path / "transformer.safetensors"), metadata={"format": FORMAT, "config": json.dumps(config)})
    with pytest.raises(CheckpointError, match=r"transformer.safetensors: unit 'transformer' is not installed \(installed: gru, lstm, nlstm, [a-z, ]*rnn\)") as error:
        load_checkpoint(tmp_path / "transformer.safetensors")
    assert "'rnn_connectivity.units' entry-point group" in str(error.value) and "pip install" in str(error.value)


def test_shape_mismatch_names_the_tensor_and_both_shapes(tmp_path):
    net = AutocompleteNet(CONFIGS["gru"])
    tensors = {name: tensor.contiguous() for name, tensor in net.state_dict().items()}
    tensors["output.weight"] = torch.zeros(13, 6)
    metadata = {"format": FORMAT, "config": json.dumps(net.config.to_dict())}
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=metadata)
    with pytest.raises(CheckpointError, match=r"'output.weight' has shape \[13, 6\], config needs \[12, 6\]"):
        load_checkpoint(tmp_path / "bad.safetensors")


def test_foreign_truncated_and_missing_files_are_refused(tmp_path):
    save_file({"x": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="format"):
        load_checkpoint(tmp_path / "foreign.safetensors")
    save_checkpoint(AutocompleteNet(CONFIGS["lstm"]), tmp_path / "lstm.safetensors")
    data = (tmp_path / "lstm.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load_checkpoint(tmp_path / "cut.safetensors")
    with pytest.raises(CheckpointError, match="vocab.json"):
        load_vocabulary(tmp_path)
    Vocabulary(["<eos>", "<unknown>", "a"]).save(tmp_path / "vocab.json")
    assert load_vocabulary(tmp_path).words == ["<eos>", "<unknown>", "a"]
