import torch

from dalle.cli import main
from dalle.eval.generation import shapes_generation_report
from dalle.models.dvae import DiscreteVAE, DVAEConfig
from dalle.models.transformer import DalleConfig, DalleTransformer
from dalle.pipelines.dalle_pipeline import DallePipeline
from dalle.text.tokenizer import TextTokenizer

PROMPTS = ["a red circle", "a green triangle above a blue square"]


def shapes_sized_pipeline() -> DallePipeline:
    """Random weights at the shapes world's 64 x 64: the report's plumbing, not its figures."""
    torch.manual_seed(0)
    tokenizer = TextTokenizer.train(PROMPTS * 3, vocab_size=300, min_frequency=1)
    vae = DiscreteVAE(DVAEConfig.from_preset("shapes")).eval()
    config = DalleConfig.from_preset("dalle-tiny").replace(
        num_text_tokens=tokenizer.vocab_size, text_seq_len=12, image_grid=16,
        num_image_tokens=vae.config.num_tokens,
    )  # fmt: skip
    return DallePipeline(tokenizer, vae, DalleTransformer(config).eval())


def test_generation_report_writes_and_scores_every_image(tmp_path):
    pipe = shapes_sized_pipeline()
    report = shapes_generation_report(pipe, PROMPTS, tmp_path / "out", num_images=3, seed=0)
    names = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert names == [f"{i:04d}_{j:02d}.png" for i in range(2) for j in range(3)]
    assert (tmp_path / "out" / "prompts.txt").read_text().splitlines() == PROMPTS
    assert len(report.images) == 6
    assert sum(s.held_out for s in report.images) == 3  # green triangle is held out
    # random weights draw noise, which the scorer rejects
    assert report.seen_accuracy == 0.0 and report.held_out_accuracy == 0.0


def test_eval_generation_command(tmp_path, capsys):
    pipe_dir = shapes_sized_pipeline().save_pretrained(tmp_path / "pipe")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    code = main(["eval", "generation", "--model", str(pipe_dir), "--prompts", str(prompts),
                 "--num-images", "1", "--out", str(tmp_path / "gen"), "--json"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert '"seen": {"images": 1' in out and '"held_out": {"images": 1' in out
    # --replace: an earlier run's image this one does not overwrite (of a longer prompt list)
    # is deleted once the new images are written, before scoring
    gen = tmp_path / "gen"
    (gen / "0005_00.png").write_bytes((gen / "0000_00.png").read_bytes())
    args = ["eval", "generation", "--model", str(pipe_dir), "--prompts", str(prompts),
            "--num-images", "1", "--out", str(gen), "--json"]  # fmt: skip
    assert main(args) == 2 and "holds 3 images of an earlier run" in capsys.readouterr().err
    assert main([*args, "--replace"]) == 0
    assert sorted(p.name for p in gen.glob("*.png")) == ["0000_00.png", "0001_00.png"]


def test_eval_generation_refuses_prompts_the_scorer_cannot_read_before_drawing(tmp_path, capsys,
                                                                             monkeypatch):  # fmt: skip
    import dalle.cli.eval_cmd as eval_cmd

    def no_loading(args):
        raise AssertionError("a model was loaded before the prompts were checked")

    monkeypatch.setattr(eval_cmd, "load_pipeline", no_loading)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\na cat on a mat\n")
    code = main(["eval", "generation", "--prompts", str(prompts), "--out", str(tmp_path / "g")])
    assert (
        code == 2
        and "prompt 1, 'a cat on a mat', is not a shapes caption" in capsys.readouterr().err
    )
