"""A refused rerun names each differing setting with both values (issue 20)."""

from kser.settings_diff import MOST_LISTED, describe_differences, differing_settings


def test_nested_settings_are_named_by_dotted_path_with_both_values():
    old = {"train": {"learning_rate": 0.001, "arch": "small", "augmentation": {"gain": 5}}, "records_dir": "/r", "gone": 1}
    new = {"train": {"learning_rate": 0.002, "arch": "lstm", "augmentation": {"gain": 5}}, "records_dir": "/r", "added": [1, 2]}
    assert differing_settings(old, new) == [
        "added: (absent) -> [1, 2]",
        "gone: 1 -> (absent)",
        'train.arch: "small" -> "lstm"',
        "train.learning_rate: 0.001 -> 0.002",
    ]
    assert differing_settings(old, old) == []


def test_long_values_and_long_lists_of_differences_are_cut():
    text = describe_differences({"folds": list(range(100))}, {"folds": list(range(99))})
    assert text.startswith("folds: [0, 1, 2") and "..." in text and len(text) < 120
    many = describe_differences({f"k{i:02}": 0 for i in range(MOST_LISTED + 3)}, {f"k{i:02}": 1 for i in range(MOST_LISTED + 3)})
    assert many.count(" -> ") == MOST_LISTED and many.endswith("; and 3 more")
