from dalle.training.metrics_log import MetricsLog


def test_rewind_drops_later_steps_and_a_torn_line(tmp_path):
    log = MetricsLog(tmp_path / "run" / "metrics.jsonl")
    for step in (10, 20, 30):
        log.append({"step": step, "loss": step / 10})
    with open(log.path, "a") as f:
        f.write('{"step": 40, "lo')  # a crash mid-write
    assert [r["step"] for r in log.records()] == [10, 20, 30]
    log.rewind(20)
    assert log.records() == [{"step": 10, "loss": 1.0}, {"step": 20, "loss": 2.0}]
    log.append({"step": 30, "loss": 9.0})
    assert [r["loss"] for r in log.records()] == [1.0, 2.0, 9.0]


def test_rewind_without_a_file_is_a_no_op(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.rewind(5)
    assert not log.path.exists() and log.records() == []
