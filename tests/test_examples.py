"""The examples run (in --fast mode) and learn: each one's loss drops. Most run in-process
(imported from examples/ and called with an argv list); one runs as a script to exercise the
command line and the --plot option."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def load(name):
    path = os.path.join(EXAMPLES, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dropped(losses, k=3):
    return np.mean(losses[-k:]) < 0.8 * np.mean(losses[:k])


def test_linear_regression():
    out = load("linear_regression").main(["--fast"])
    assert len(out["losses"]) == 20 and dropped(out["losses"])
    assert out["losses"][-1] < out["losses"][0] / 3
    full = load("linear_regression").main(["--steps", "200"])
    assert abs(full["w"] - 3.0) < 0.2 and abs(full["b"] + 2.0) < 0.2


@pytest.mark.parametrize("argv", [["--fast"], ["--fast", "--optimizer", "momentum",
                                               "--activation", "tanh"]])
def test_digits_mlp(argv):
    out = load("digits_mlp").main(argv)
    assert len(out["losses"]) == 12 and dropped(out["losses"])
    assert 0.0 <= out["test_accuracy"] <= 1.0


def test_digits_cnn():
    out = load("digits_cnn").main(["--fast"])
    assert len(out["losses"]) == 30 and dropped(out["losses"], k=4)


def test_per_example_grads(capsys):
    out = load("per_example_grads").main(["--fast"])
    assert out["max_diff"] < 1e-5                      # vmap(grad) == a loop of grad
    assert len(out["losses"]) == 11 and dropped(out["losses"], k=3), out["losses"]
    # the privacy budget of the run, from the RDP accountant (tests/test_rdp_accountant.py)
    eps = load("rdp_accountant").epsilon(out["q"], 1.0, len(out["losses"]), 1e-5)
    assert out["epsilon"] == eps and 0 < eps < 10
    printed = capsys.readouterr().out
    assert f"epsilon = {eps:.2f}, delta = 1e-05" in printed
    assert "dp-sgd epoch 1/1: step 11/12" in printed    # progress without a terminal


def test_finetune(tmp_path):
    png = tmp_path / "finetune.png"
    out = load("finetune").main(["--fast", "--checkpoint-dir", str(tmp_path), "--plot", str(png)])
    assert out["restored_identical"] and out["frozen"] and out["head_moved"]
    assert dropped(out["losses_a"]) and dropped(out["losses_b"])
    assert os.path.exists(tmp_path / "digits_0_4.safetensors")
    # the plot shows accuracy before/after per task: task A from its random init
    assert out["acc_a_init"] < out["acc_a"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _scripts_with_options():
    """The examples that parse a command line (helper modules such as progress.py do not)."""
    names = []
    for f in sorted(os.listdir(EXAMPLES)):
        if f.endswith(".py"):
            with open(os.path.join(EXAMPLES, f), encoding="utf-8") as fh:
                if "ArgumentParser(" in fh.read():
                    names.append(f[:-3])
    return names


@pytest.mark.parametrize("name", _scripts_with_options())
def test_help_shows_defaults(name, capsys):
    with pytest.raises(SystemExit) as e:
        load(name).main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "(default:" in text
    # every option with a value shows its default
    import re
    for opt in re.findall(r"^  (--[a-z-]+) [A-Z_{]", text, flags=re.M):
        block = text[text.index(f"  {opt} "):].split("\n  -")[0]
        assert "(default:" in block, (name, opt)


def test_script_with_plot(tmp_path):
    png = tmp_path / "curves.png"
    proc = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "digits_mlp.py"), "--fast", "--plot", str(png)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "test accuracy" in proc.stdout
    # stdout is not a terminal: one progress line per epoch instead of a silent bar
    assert "mlp/adam/relu epoch 1/1: step 12/12, loss" in proc.stdout
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_char_lm(tmp_path):
    out = load("char_lm").main(["--fast", "--checkpoint-dir", str(tmp_path)])
    assert len(out["losses"]) == 16 and out["val_losses"][-1] < out["val_losses"][0]
    assert np.mean(out["losses"][-3:]) < np.mean(out["losses"][:3]) - 0.2, out["losses"]
    assert out["sample"].startswith("The ") and len(out["sample"]) == 4 + 20
    assert os.path.exists(tmp_path / f"step_{out['best_step']:08d}.safetensors")
    # the LSTM variant with remat, eagerly (no compilation: keeps the suite fast)
    out = load("char_lm").main(["--fast", "--model", "lstm", "--remat", "--no-jit",
                                "--checkpoint-dir", str(tmp_path / "lstm")])
    assert out["val_losses"][-1] < out["val_losses"][0]
    assert np.mean(out["losses"][-3:]) < np.mean(out["losses"][:3]), out["losses"]


def _number(text, prefix, index=0):
    """The `index`-th number on the first printed line starting with `prefix`."""
    import re
    line = next(ln for ln in text.splitlines() if ln.startswith(prefix))
    return float(re.findall(r"-?\d+\.\d+", line)[index])


def test_gaussian_process_script():
    proc = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "gaussian_process.py"), "--fast"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    before, after = _number(out, "NLL:", 0), _number(out, "NLL:", 1)
    assert after < before - 50, out                    # 72.9 -> -4.5 with the fixed seed
    rmse, rmse_initial = _number(out, "test RMSE", 0), _number(out, "test RMSE", 1)
    # The noise sd is 0.15: the posterior mean of 60 points averages it down (0.055 with the
    # fixed seed); 0.1 leaves slack for other BLAS round-off yet is below the noise level,
    # which a mean that merely interpolated the noisy points would not beat. The initial
    # (over-smoothing) hyperparameters give 0.64.
    assert rmse < 0.1 and rmse < rmse_initial / 4, out
    noise = _number(out, "learned:", 2)
    assert 0.1 < noise < 0.22, out                      # the data's noise sd is 0.15


def test_gaussian_process_nll_gradient_and_jit():
    gp = load("gaussian_process")
    from transforms.test_util import check_grads
    import transforms as T
    x, y, _, _ = gp.make_data(1, 15, gp.NOISE)
    params = gp.init_params(lengthscale=0.8, variance=1.3, noise=0.3)
    # forward mode against central differences, reverse mode against forward mode
    check_grads(lambda p: gp.nll(p, x, y), (params,), order=1, modes=("fwd", "rev"))
    grads = T.grad(gp.nll)(params, x, y)                 # and each partial derivative directly
    for k in params:
        h = 1e-5
        up, down = dict(params, **{k: params[k] + h}), dict(params, **{k: params[k] - h})
        fd = (gp.nll(up, x, y) - gp.nll(down, x, y)) / (2 * h)
        np.testing.assert_allclose(grads[k], fd, rtol=1e-6, atol=1e-8, err_msg=k)
    eager = gp.nll(params, x, y)
    np.testing.assert_allclose(T.jit(gp.nll)(params, x, y), eager, rtol=1e-12)
    # against the textbook formula in plain NumPy
    K = np.asarray(gp.noisy_gram(params, x))
    ref = (0.5 * y @ np.linalg.solve(K, y) + 0.5 * np.linalg.slogdet(K)[1]
           + 0.5 * len(x) * np.log(2 * np.pi))
    np.testing.assert_allclose(eager, ref, rtol=1e-10)


def test_spectral_fit_recovers_the_diffusion_coefficient():
    out = load("spectral").main(["--fast"])
    assert abs(out["d"] - 0.35) < 0.35 * 0.05, out          # noise 0.02: learned 0.345
    assert abs(out["scale"] - 1.0) < 0.03, out
    assert out["after"] < 5e-4 < out["before"], out          # noise variance is 4e-4


def test_spectral_loss_gradient_through_the_ffts():
    sp = load("spectral")
    from transforms.test_util import check_grads
    u0, observed = sp.make_data()
    params = {"log_d": np.float64(np.log(0.2)), "scale": np.float64(0.8)}
    check_grads(lambda p: sp.loss(p, u0, sp.TIMES, observed), (params,), order=2,
                modes=("fwd", "rev"))


def test_finetune_resnet(tmp_path):
    # eagerly: compiling a ResNet step takes minutes on a loaded 2-core machine, far more than
    # 60 eager steps (benchmarks/finetune_resnet.py runs the jitted step)
    out = load("finetune_resnet").main(["--fast", "--no-jit", "--checkpoint-dir",
                                        str(tmp_path)])
    assert out["frozen"] and out["restored_identical"]
    assert out["accuracy_before"] < 0.2                  # a new random head: chance level
    # a head on random (stand-in) features: 0.62 with the fixed seeds
    assert out["accuracy_after"] >= 0.45, out["accuracy_after"]
    assert dropped(out["losses"], k=5), out["losses"]
    assert os.path.exists(tmp_path / "step_00000060.safetensors")
