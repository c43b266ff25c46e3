"""Run an exported LiteRT or ONNX model as a deployment would: no kser, Keras or TensorFlow.

Usage: ``python -I portable_runner.py {litert|onnx} MODEL INPUTS.npy OUTPUTS.npy``. Prints the
LiteRT model's op names as JSON (an empty list for ONNX), and fails if anything imported
TensorFlow, Keras or kser on the way.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def run_litert(model_path: str, waveforms: np.ndarray) -> tuple[np.ndarray, list[str]]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=model_path)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    batch = int(source["shape"][0])  # static: a larger input is sent in calls of that many rows
    outputs = []
    for start in range(0, waveforms.shape[0], batch):
        interpreter.set_tensor(source["index"], waveforms[start : start + batch])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target["index"]).copy())
    return np.concatenate(outputs), litert_op_names(model_path)


def litert_op_names(model_path: str) -> list[str]:
    """Every operator code of the flatbuffer, loop bodies' included: builtin names, and
    ``CUSTOM:<code>`` for custom ops (Flex ops are custom ops named ``Flex...``)."""
    from ai_edge_litert import schema_py_generated as schema

    with open(model_path, "rb") as file:
        model = schema.Model.GetRootAs(file.read(), 0)
    builtin_names = {value: name for name, value in vars(schema.BuiltinOperator).items() if name.isupper()}
    names = set()
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            names.add(f"CUSTOM:{code.CustomCode().decode()}")
        else:
            names.add(builtin_names[builtin])
    return sorted(names)


def run_onnx(model_path: str, waveforms: np.ndarray) -> tuple[np.ndarray, list[str]]:
    import onnxruntime

    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: waveforms})[0], []


def run_isolated(kind: str, model_path: Path, waveforms: np.ndarray, work: Path) -> tuple[np.ndarray, list[str]]:
    """(probabilities, LiteRT op names) of ``model_path`` on ``waveforms``, from this script run in
    an isolated Python (``-I``: no PYTHONPATH, so not even the repository is importable)."""
    inputs, outputs = work / f"{kind}_inputs.npy", work / f"{kind}_probabilities.npy"
    np.save(inputs, waveforms)
    command = [sys.executable, "-I", __file__, kind, str(model_path), str(inputs), str(outputs)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return np.load(outputs), json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    kind, model_path, inputs_path, outputs_path = sys.argv[1:]
    runner = {"litert": run_litert, "onnx": run_onnx}[kind]
    probabilities, ops = runner(model_path, np.load(inputs_path))
    leaked = sorted(name for name in ("tensorflow", "keras", "kser") if name in sys.modules)
    assert not leaked, f"the {kind} runtime imported {leaked}"
    np.save(outputs_path, probabilities)
    print(json.dumps(ops))


if __name__ == "__main__":
    main()
