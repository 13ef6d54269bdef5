"""What a training budget costs (train_budget, pure): memory of a step against hand counts and a real
step, the split that fits, durations, and how much the final evaluation covers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from lts_cli import train_budget as tb
from lts_cli.errors import LtsError
from lts_cli.gallery import find
from lts_cli.train_progress import Budget, Clock, Progress

A9E3 = find("gpt2_a9e3").arch  # 4 layers, d_model 128, d_inner 768, 4 heads


def test_the_logits_of_the_published_batch() -> None:
    # The count: 64 x 1,024 tokens x 50,257 logits x 4 bytes = 13.2 GB per fp32 copy; the loss
    # and its backward hold four at once (the logits, their log-softmax, and the gradients through both).
    step = tb.train_step(A9E3, 1024, 64)
    assert 64 * 1024 * 50257 * 4 == 13_174_571_008
    assert step.logits == 4 * 13_174_571_008
    assert step.state == 16 * 7_620_480  # weights, gradients and two AdamW moments, fp32
    assert tb.eval_step(A9E3, 1024, 64).logits == 2 * 13_174_571_008  # no gradients


def test_the_published_batch_is_split_to_fit_this_machine() -> None:
    fit = tb.split(A9E3, 1024, 64, 1, free_bytes=22 * 10**9)
    assert fit.micro < 64 and 64 % fit.micro == 0 and fit.accumulation == 64 // fit.micro
    assert fit.step.total <= 0.8 * 22e9 < tb.train_step(A9E3, 1024, 2 * fit.micro).total
    assert fit.needed_for_batch > 60e9
    assert tb.split(A9E3, 1024, 64, 2, free_bytes=22 * 10**9).accumulation == 2 * (64 // fit.micro)
    everything = tb.split(A9E3, 128, 4, 1, free_bytes=22 * 10**9)
    assert (everything.micro, everything.accumulation, everything.eval_batch) == (4, 1, 4)


def test_two_processes_share_the_memory() -> None:
    one, two = (tb.split(A9E3, 1024, 64, 1, 22 * 10**9, processes=n).micro for n in (1, 2))
    assert two < one


def test_not_even_one_sequence_fits() -> None:
    with pytest.raises(LtsError) as info:
        tb.split(A9E3, 1024, 64, 1, free_bytes=10**9)
    message = str(info.value)
    assert "one sequence of --seq-len 1024 needs about" in message and "lower --seq-len" in message


@pytest.mark.slow  # runs two real training steps in a fresh process
def test_the_estimate_is_close_to_a_real_step() -> None:
    """The kernel's peak-RSS counter around two real forward/backward/AdamW steps (reset at the start:
    measuring.PeakRss) against the estimate without the fixed overhead and the weights already there:
    the estimate is at most 30% above, never below."""
    code = textwrap.dedent(
        """
        import json, torch, transformers
        from lts_cli.measuring import PeakRss
        from lts_cli.modeling import gpt2_config
        from lts_cli.space import Arch
        from lts_cli import train_budget as tb
        arch, b, s = Arch(n_layer=2, d_model=128, d_inner=512, n_head=4), 8, 512
        torch.manual_seed(0)
        model = transformers.GPT2LMHeadModel(gpt2_config(arch, resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1))
        opt = torch.optim.AdamW(model.parameters())
        ids = torch.randint(0, 50257, (b, s))
        with PeakRss() as peak:
            for _ in range(2):
                model(input_ids=ids, labels=ids).loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        est = tb.train_step(arch, s, b)
        print(json.dumps([peak.delta_mib * 2**20, est.total - est.overhead - 4 * arch.unique_params, peak.method]))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    measured, estimated, method = json.loads(done.stdout.splitlines()[-1])
    if method != "vmhwm":
        pytest.skip("no resettable peak-RSS counter on this system")
    assert 1.0 < estimated / measured < 1.3, (measured, estimated)


@pytest.mark.parametrize(
    ("text", "seconds"), [("2h", 7200), ("30m", 1800), ("90s", 90), ("1h30m", 5400), ("1.5h", 5400), ("45", 45)]
)
def test_durations(text: str, seconds: float) -> None:
    assert tb.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2x", "h", "2h-", "soon"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        tb.parse_duration(text)


def test_a_month_long_budget_says_what_an_hour_is() -> None:
    """After 3 steps of 60 s each at the published budget (65,536 tokens a step), by hand: 1,092 tokens/s;
    30,000 steps take 1,800,000 s of stepping plus 59 periodic evaluations of 65,536 tokens at 3x the
    training rate (20 s each): 1,801,180 s, 21 days; an hour is floor(3600 x 1.8e6 / 1,801,180 / 60) = 59
    steps, 59 x 65,536 = 3,866,624 tokens."""
    progress = Progress(lambda e: None, Budget(30000, 65536, 500, 65536), None, Clock(), 10.0)
    line = progress.estimate(3, 60.0, "3 steps")
    assert "1,092 training tokens/s here: 30,000 steps of 65,536 tokens take about 21 days" in line
    assert "--max-steps 59 (or --tokens 3,866,624, or --max-time 1h)" in line
    short = Progress(lambda e: None, Budget(30, 64, 500, 65536), None, Clock(), 10.0).estimate(3, 0.1, "3 steps")
    assert "take about 3.0 s" in short and "--max-steps" not in short


def test_what_the_final_evaluation_covers() -> None:
    # A split of 1,000 blocks of 32 tokens, a fixed sample of 100; evaluation at 1,000 tokens/s.
    args = dict(split="validation", total=1000, sample=100, least=4, block_tokens=32, eval_rate=1000.0)
    assert tb.final_eval("auto", train_s=400.0, **args) == tb.EvalChoice(1000, True)  # 32 s <= 40 s
    assert tb.final_eval("auto", train_s=40.0, **args) == tb.EvalChoice(100, False)  # 3.2 s <= 4 s < 32 s
    small = tb.final_eval("auto", train_s=2.0, **args)  # 0.2 s: 200 tokens, 6 blocks
    assert (small.blocks, small.whole) == (6, False) and "final validation on 192 tokens" in (small.note or "")
    assert tb.final_eval("auto", train_s=0.01, **args).blocks == 4  # never fewer than `least`
    assert tb.final_eval("full", train_s=0.01, **args) == tb.EvalChoice(1000, True)
    assert tb.final_eval("sample", train_s=0.01, **args) == tb.EvalChoice(100, False)
    assert tb.final_eval("sample", train_s=0.01, **{**args, "sample": 5000}) == tb.EvalChoice(1000, True)


def test_the_sample_is_spread_and_fixed() -> None:
    assert tb.spread(10, 20) == list(range(10))
    assert tb.spread(100, 4) == [12, 37, 62, 87]
    assert tb.spread(100, 4) == tb.spread(100, 4)
