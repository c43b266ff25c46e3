"""The command line gives one clear line for bad input, never a traceback."""

from pathlib import Path

import pytest

from kser_cli.main import COMMANDS
from tests.cli_runner import assert_one_line_error, run_kser, start_kser
from tests.synthetic import write_crema_d


def test_missing_data_dir(tmp_path):
    result = run_kser("build-records", f"--data_dir={tmp_path / 'nope'}", f"--output_dir={tmp_path / 'out'}")
    assert_one_line_error(result, "nope", "does not exist")


def test_empty_data_dir(tmp_path):
    (tmp_path / "data").mkdir()
    result = run_kser("build-records", f"--data_dir={tmp_path / 'data'}", f"--output_dir={tmp_path / 'out'}")
    assert_one_line_error(result, "no usable audio files")


def test_build_prints_a_summary_with_rate(tmp_path):
    write_crema_d(tmp_path / "data", actors=3, sentences=("DFA",))
    result = run_kser(
        "build-records", f"--data_dir={tmp_path / 'data'}", f"--output_dir={tmp_path / 'out'}", "--clip_seconds=0.5"
    )
    assert result.returncode == 0, result.stderr
    assert "train" in result.stdout and "clips/s" in result.stdout
    assert "oneDNN" not in result.stderr and "Traceback" not in result.stderr


def test_refused_rerun_names_the_difference(tmp_path):
    write_crema_d(tmp_path / "data", actors=3, sentences=("DFA",))
    args = [f"--data_dir={tmp_path / 'data'}", f"--output_dir={tmp_path / 'out'}", "--clip_seconds=0.5"]
    assert run_kser("build-records", *args).returncode == 0
    result = run_kser("build-records", *args, "--seed=3")
    assert_one_line_error(result, "differs in: config.seed", "--overwrite")


def test_help_and_unknown_command():
    listing = run_kser("--help")
    assert listing.returncode == 0 and "build-records" in listing.stdout
    help_text = run_kser("build-records", "--help")
    assert help_text.returncode == 0 and "--data_dir" in help_text.stdout and "--noise_level" in help_text.stdout
    unknown = run_kser("build-recrods")
    assert unknown.returncode == 2 and "unknown command" in unknown.stderr


@pytest.mark.parametrize("args", [("predict", "--help"), ("--help",)])
def test_a_reader_that_stops_early_ends_kser_quietly(args):
    """`kser predict --help | head -n 1`: exit 141 (as SIGPIPE ends a Unix tool), stderr empty. The
    pipe is closed before kser writes: help fits a pipe's buffer, so a reader that first read a
    line would leave nothing to break."""
    process = start_kser(*args)
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 141, stderr
    assert stderr == ""


def test_help_lists_verbosity_and_helpfull_lists_every_flag():
    short = run_kser("train", "--help")
    assert short.returncode == 0 and "--arch" in short.stdout and "--verbosity" in short.stdout and "--helpfull" in short.stdout
    full = run_kser("build-records", "--helpfull")
    assert full.returncode == 0 and full.stderr == "", full.stderr
    assert "--data_dir" in full.stdout and "absl.logging" in full.stdout and "logtostderr" in full.stdout


def test_keras_draws_a_progress_bar_on_a_terminal_and_one_line_per_epoch_elsewhere():
    import io

    from kser_cli.common import fit_verbosity

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert fit_verbosity(Terminal()) == 1 and fit_verbosity(io.StringIO()) == 2


def test_the_demo_predicts_one_held_out_clip_per_emotion_and_says_the_truth(tmp_path):
    import json

    from kser_cli.demo_predictions import held_out_clips, report

    (tmp_path / "manifest.json").write_text(json.dumps({"label_names": ["ANG", "NEU"], "splits": {"test": {"speakers": ["1007"]}}}))
    for name in ("1001_DFA_ANG_XX", "1007_IEO_NEU_XX", "1007_DFA_ANG_XX", "1007_IEO_ANG_XX", "notes"):
        (tmp_path / f"{name}.wav").touch()
    clips = held_out_clips(tmp_path, tmp_path)
    assert [(path.name, label) for path, label in clips] == [("1007_DFA_ANG_XX.wav", "ANG"), ("1007_IEO_NEU_XX.wav", "NEU")]
    lines = report([("a.wav", "ANG", "NEU"), ("b.wav", "NEU", "NEU"), ("c.wav", "SAD", None)], classes=6)
    assert lines == [
        "  a.wav  true ANG, predicted NEU", "  b.wav  true NEU, predicted NEU", "  c.wav  true SAD, predicted nothing (error)",
        "1 of 3 right (chance: 1 in 6)",
    ]


def test_importing_kser_is_quiet_and_does_not_load_tensorflow_io():
    import subprocess
    import sys

    from tests.cli_runner import REPO, kser_env

    code = "import sys, kser, kser.audio, kser.tfio_support, kser_tfrecords_builder, kser_cli.build_records; print('tensorflow_io' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=kser_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert result.stderr == ""


def _modules_loaded_by(code: str) -> set[str]:
    """The heavy modules (TensorFlow, Keras) in sys.modules after ``code`` runs in a fresh Python."""
    import subprocess
    import sys

    from tests.cli_runner import REPO, kser_env

    probe = f"{code}\nimport sys; print(' '.join(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=kser_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_defines_its_flags_without_importing_tensorflow(command):
    """So that `kser COMMAND --help` and flag mistakes answer in well under a second."""
    assert _modules_loaded_by(f"import {COMMANDS[command][0]}") == set()


def test_train_and_cross_validate_report_plain_mistakes_before_importing_tensorflow(tmp_path):
    code = f"""
from kser.config import TrainConfig, CrossValidationConfig
from kser.errors import KserError
from kser.training import train
from kser.cross_validation import cross_validate
for run in (lambda: train(TrainConfig(), {str(tmp_path / 'none')!r}, {str(tmp_path / 'm')!r}),
            lambda: train(TrainConfig(batch_size=0), {str(tmp_path)!r}, {str(tmp_path / 'm')!r}),
            lambda: cross_validate(TrainConfig(), {str(tmp_path / 'none')!r}, {str(tmp_path / 'm')!r})):
    try:
        run()
        raise SystemExit('no error')
    except KserError:
        pass
"""
    assert _modules_loaded_by(code) == set()
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("train", "--records_dir=r", "--model_dir=m", "--epochs=abc"), "flag --epochs=abc"),
        (("cross-validate", "--records_dir=r", "--model_dir=m", "--arch=foo"), "flag --arch=foo"),
        (("export", "--model_dir=m"), "--export_dir"),
        (("predict", "--export_dir=e", "--no_such_flag", "x.wav"), "no_such_flag"),
    ],
)
def test_bad_flag_values_are_kser_s_one_line_errors(args, fragment):
    result = run_kser(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"kser {args[0]}: error: ") and fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "FATAL" not in result.stderr


def test_demo_data_then_build_records(tmp_path):
    made = run_kser("demo-data", f"--out={tmp_path / 'audio'}", "--actors=3", "--sentences=1")
    assert made.returncode == 0, made.stderr
    assert "18 synthetic clips" in made.stdout
    built = run_kser("build-records", f"--data_dir={tmp_path / 'audio'}", f"--output_dir={tmp_path / 'records'}")
    assert built.returncode == 0, built.stderr
    assert "skipped" not in built.stdout


def test_demo_data_bad_flags_are_one_line_errors(tmp_path):
    assert_one_line_error(run_kser("demo-data", f"--out={tmp_path}", "--sentences=40"), "sentences")
    assert "SYNTHETIC" in run_kser("demo-data", "--help").stdout


def test_installed_top_level_import_names_are_all_kser_s_own(tmp_path):
    """Installing kser adds no generic top-level module (such as `cli`) to site-packages."""
    import subprocess
    import sys
    from importlib.metadata import distribution

    names = distribution("kser").read_text("top_level.txt").split()
    assert names and all(name == "kser" or name.startswith("kser_") for name in names), names
    assert {"kser_cli", "kser_tfrecords_builder"} <= set(names)
    # Importable by those names from outside the repository, where the folders are not on the path.
    code = "import kser_cli.main, kser_tfrecords_builder; print(kser_cli.main.__name__)"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "kser_cli.main", result.stderr


def test_unusable_output_folders_are_one_line_errors(tmp_path):
    """Rows 3-5 of the bad-input table: an output under a file, a file as the folder, /proc."""
    write_crema_d(tmp_path / "data", actors=3, sentences=("DFA",))
    blocker = tmp_path / "file"
    blocker.write_text("user data")
    build = ["build-records", f"--data_dir={tmp_path / 'data'}", "--clip_seconds=0.5"]
    assert_one_line_error(run_kser(*build, f"--output_dir={blocker / 'sub'}"), "is a file, not a folder")
    assert_one_line_error(run_kser(*build, f"--output_dir={blocker}"), "is a file, not a folder")
    if Path("/proc/self").is_dir():
        assert_one_line_error(run_kser(*build, "--output_dir=/proc/kser-test"), "/proc/kser-test")
    built = run_kser(*build, f"--output_dir={tmp_path / 'records'}")
    assert built.returncode == 0, built.stderr
    for command in ("train", "cross-validate"):
        result = run_kser(command, f"--records_dir={tmp_path / 'records'}", f"--model_dir={blocker}")
        assert_one_line_error(result, "model directory", "is a file, not a folder")
    assert blocker.read_text() == "user data"
