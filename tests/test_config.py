import shutil
from dataclasses import dataclass, field
from typing import Literal

import pytest

from dalle.config import Config, ConfigError


@dataclass(frozen=True)
class Inner(Config):
    rate: float = 0.1
    name: str = "x"


@dataclass(frozen=True)
class Outer(Config):
    dim: int = 8
    mults: tuple[int, ...] = (1, 2)
    mode: Literal["row", "column"] = "row"
    dropout: float | None = None
    flag: bool = False
    inner: Inner = field(default_factory=Inner)


def test_json_round_trip_and_save_load(tmp_path):
    cfg = Outer(dim=16, mults=(1, 2, 4), mode="column", dropout=0.5, flag=True, inner=Inner(2, "y"))
    assert Outer.from_json(cfg.to_json()) == cfg
    cfg.save(tmp_path / "config.json")
    assert Outer.load(tmp_path / "config.json") == cfg
    assert Outer.from_dict({"dim": 3}).inner == Inner()


def test_ints_are_accepted_for_floats_but_not_the_reverse():
    assert Outer.from_dict({"inner": {"rate": 1}}).inner.rate == 1.0
    with pytest.raises(ConfigError, match="dim: expected an integer"):
        Outer.from_dict({"dim": 1.5})


@pytest.mark.parametrize(
    "data, message",
    [
        ({"dimm": 3}, "unknown key.*dimm"),
        ({"inner": {"rat": 1.0}}, "unknown key.*inner.rat"),
        ({"dim": "8"}, "dim: expected an integer"),
        ({"flag": 1}, "flag: expected true/false"),
        ({"mode": "diagonal"}, "mode: 'diagonal' is not one of"),
        ({"mults": [1, "2"]}, r"mults\[1\]: expected an integer"),
        ({"inner": {"name": 3}}, "inner.name: expected a string"),
        ({"dropout": "high"}, "dropout"),
    ],
)
def test_errors_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        Outer.from_dict(data)


def test_bad_file_names_the_path(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"dim": true}')
    with pytest.raises(ConfigError, match="c.json: dim: expected an integer"):
        Outer.load(path)


def test_presets_and_replace():
    tiny = Outer.register_preset("tiny", Outer(dim=2))
    assert Outer.from_preset("tiny") is tiny
    assert tiny.replace(dim=4).dim == 4
    with pytest.raises(ConfigError, match="no Outer preset named 'huge' .*tiny"):
        Outer.from_preset("huge")
    with pytest.raises(ConfigError, match="unknown key"):
        tiny.replace(width=3)
    assert Inner.presets == {}  # each config class has its own presets


def test_frozen():
    with pytest.raises(AttributeError):
        Outer().dim = 3


def test_fixed_length_tuples_round_trip():
    @dataclass(frozen=True)
    class WithTuple(Config):
        mean: tuple[float, float, float] = (0.5, 0.5, 0.5)

    loaded = WithTuple.from_json(WithTuple(mean=(0.1, 0.2, 0.3)).to_json())
    assert loaded.mean == (0.1, 0.2, 0.3)
    with pytest.raises(ConfigError, match="mean"):
        WithTuple.from_dict({"mean": [0.1, 0.2]})
    with pytest.raises(ConfigError, match=r"mean\[1\]"):
        WithTuple.from_dict({"mean": [0.1, "x", 0.3]})


def test_model_configs_refuse_nonsense_when_made():
    from dalle.models.clip import CLIPConfig
    from dalle.models.dvae import DVAEConfig
    from dalle.models.prior import PriorConfig
    from dalle.models.transformer import DalleConfig
    from dalle.models.unet import UNetConfig

    cases = [
        (DalleConfig, {"num_heads": 0}, "DalleConfig.num_heads must be above 0"),
        (DalleConfig, {"head_dim": 0}, "DalleConfig.head_dim must be above 0"),
        (DalleConfig, {"dropout": -0.1}, r"DalleConfig.dropout must be in \[0, 1\)"),
        (DVAEConfig, {"num_groups": 0}, "DVAEConfig.num_groups must be above 0"),
        (DVAEConfig, {"eps": 0.6}, "eps must be below 0.5"),
        (DVAEConfig, {"hidden_dim": 2}, "multiple of 4"),
        (CLIPConfig, {"text_heads": 0}, "CLIPConfig.text_heads must be above 0"),
        (CLIPConfig, {"init_temperature": 0.0}, "init_temperature must be above 0"),
        (UNetConfig, {"base_channels": 50, "num_groups": 5, "head_dim": 16}, "heads of 16"),
        (UNetConfig, {"base_channels": 48, "num_groups": 32}, "num_groups 32"),
        (UNetConfig, {"prediction": "eps"}, "prediction must be one of epsilon, x0, v"),
        (UNetConfig, {"schedule": "cosin"}, "schedule must be one of cosine, linear"),
        (PriorConfig, {"schedule": "cosin"}, "schedule must be one of cosine, linear"),
        (PriorConfig, {"num_layers": 0}, "PriorConfig.num_layers must be above 0"),
    ]
    for cls, fields, message in cases:
        with pytest.raises(ValueError, match=message):
            cls(**fields)
    for cls in (DalleConfig, DVAEConfig, CLIPConfig, UNetConfig, PriorConfig):
        for name in cls.presets:  # every preset is valid
            cls.from_preset(name)


def test_a_part_whose_config_is_nonsense_is_one_error_naming_it(tmp_path):
    import json

    from dalle.folders import ASSETS
    from dalle.pipelines.dalle_pipeline import DallePipeline

    folder = tmp_path / "pipe"
    shutil.copytree(ASSETS / "shapes", folder)
    config = json.loads((folder / "transformer" / "config.json").read_text())
    (folder / "transformer" / "config.json").write_text(json.dumps({**config, "num_layers": 0}))
    with pytest.raises(ValueError, match=r"transformer.*num_layers must be above 0"):
        DallePipeline.from_pretrained(folder)
