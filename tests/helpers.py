"""Helpers shared by the tests: running a top-level script in this process, checking a refusal."""

import contextlib
import io
import os
import runpy
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ScriptResult:
    def __init__(self, exit_code, stdout, stderr):
        self.exit_code, self.stdout, self.stderr = exit_code, stdout, stderr

    @property
    def last_line(self):
        return self.stdout.strip().splitlines()[-1]


def run_script(script, *arguments):
    """Runs a top-level script as `python script ARGS` would, in this process (TensorFlow loads once)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    saved_argv = sys.argv
    sys.argv = [script, *map(str, arguments)]
    exit_code = 0
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            runpy.run_path(os.path.join(REPO, script), run_name="__main__")
    except SystemExit as exit:
        exit_code = exit.code if isinstance(exit.code, int) else 1
    finally:
        sys.argv = saved_argv
    return ScriptResult(exit_code, stdout.getvalue(), stderr.getvalue())


def assert_refused(result, *expected_parts):
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for part in expected_parts:
        assert part in lines[0], lines[0]


def write_image_tree(root, images, labels, folder_name, suffixes=(".png",)):
    """`root/<folder_name(label)>/faceNNN<suffix>` for each image, the suffixes taken in turn."""
    import cv2

    for index, (image, label) in enumerate(zip(images, labels)):
        folder = root / folder_name(label)
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"face{index:03d}{suffixes[index % len(suffixes)]}"), image)
