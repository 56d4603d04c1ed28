"""The code's layout holds: layers point down (an import walk), citations of the method document name
sections that exist, and the public import paths stay."""

import ast
import os
import re
import sys

import pytest
from conftest import ROOT

PRODUCT_FOLDERS = ("utils", "models", "tools", "benchmarks", "scripts")
PROJECT_PACKAGES = ("utils", "models", "tools")


def product_files(*suffixes):
    """Paths (relative to the repo root) of the product's files with these suffixes (no tests, no .venv)."""
    found = [name for name in os.listdir(ROOT) if name.endswith(suffixes)]
    for folder in PRODUCT_FOLDERS:
        for base, _, names in os.walk(os.path.join(ROOT, folder)):
            found += [os.path.relpath(os.path.join(base, name), ROOT) for name in names if name.endswith(suffixes)]
    return sorted(found)


def imports(path):
    """(module, line, inside a function) of every import of a project module in one file."""
    tree = ast.parse(open(os.path.join(ROOT, path)).read())
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module] + [f"{child.module}.{alias.name}" for alias in child.names]  # `from utils import plots`
            elif isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            else:
                names = []
            found.extend((name, child.lineno, in_function) for name in names if name.split(".")[0] in PROJECT_PACKAGES)
            visit(child, nested)

    visit(tree, False)
    return found


def imports_of(package):
    """{file: [imported project modules]} for the .py files under `package` (a folder path)."""
    return {path: [module for module, _, _ in imports(path)] for path in product_files(".py") if path.startswith(package + os.sep)}


def test_the_walk_sees_files_and_their_imports(tmp_path, monkeypatch):
    assert "utils/run/loop.py" in product_files(".py") and "train-joint.py" in product_files(".py")
    assert "utils.run.loop" in [module for module, _, _ in imports("utils/method2021/epochs.py")]
    local = [(module, in_function) for module, _, in_function in imports("ordinal-pretrain-cluttermnist-scale.py")]
    assert ("utils.run.signals", False) in local  # the guarded import at the top of a script is not function-local
    probe = tmp_path / "probe.py"
    probe.write_text("from utils import plots\n\ndef late():\n    import models\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", str(tmp_path))  # imports() reads files under ROOT
    assert [(m, f) for m, _, f in imports("probe.py")] == [("utils", False), ("utils.plots", False), ("models", True)]


@pytest.mark.parametrize("package, forbidden", [
    ("utils/run", ("utils.data", "utils.localization", "utils.method2021", "utils.successor", "models", "utils.plots",
                   "utils.actions", "utils.boxes", "utils.rl", "tools")),
    ("utils/data", ("utils.localization", "utils.method2021", "utils.successor", "models", "utils.actions", "utils.boxes", "utils.rl",
                    "tools")),
    ("utils/localization", ("utils.method2021", "utils.successor")),
    ("utils/successor", ("utils.method2021",)),
    ("utils/method2021", ("utils.successor",)),
    ("models", ("utils", "tools")),
])
def test_layers_point_down(package, forbidden):
    """run/ (run infrastructure) knows no method and no dataset; the data know no localization; the
    shared core knows neither method; the two methods know nothing of each other; models stand alone."""
    wrong = [f"{path} imports {module}" for path, modules in imports_of(package).items() for module in modules
             if any(module == prefix or module.startswith(prefix + ".") for prefix in forbidden)]
    assert not wrong, wrong


def test_no_function_local_import_of_a_project_module():
    """Imports of the project's own modules sit at the top of a file, where they show the file's edges."""
    local = [f"{path}:{line} imports {module} inside a function" for path in product_files(".py")
             for module, line, in_function in imports(path) if in_function]
    assert not local, local


def method_sections():
    """The section numbers of the method document ('1', ..., '10.10') from its headings."""
    with open(os.path.join(ROOT, "docs", "method.md")) as stream:
        return set(re.findall(r"^#+ §(\d+(?:\.\d+)?) ", stream.read(), re.M))


def test_every_citation_of_the_method_names_a_section_that_exists():
    sections = method_sections()
    assert {"1", "5", "10", "10.1", "10.10"} <= sections
    wrong = []
    tests = [os.path.relpath(os.path.join(base, name), ROOT) for base, _, names in os.walk(os.path.join(ROOT, "tests"))
             for name in names if name.endswith(".py")]
    assert any(path.startswith(os.path.join("tests", "e2e")) for path in tests)
    for path in product_files(".py", ".sh") + tests:
        for number, line in enumerate(open(os.path.join(ROOT, path)), 1):
            for citation in re.finditer(r"docs/method\.md(.{0,40})", line):
                cited = re.findall(r"§(\d+(?:\.\d+)?)", citation.group(1).split(")")[0])
                if not re.match(r"\s*§", citation.group(1)) or any(c not in sections for c in cited):
                    wrong.append(f"{path}:{number}: {line.strip()[:120]}")
    assert not wrong, wrong


def test_public_import_paths():
    """The names researchers and notebooks import keep their paths."""
    from models import Agent, Net, RoIAgent, RoIEncoder  # noqa: F401
    from utils.actions import Actor
    from utils.boxes import sample_ordinal_boxes
    from utils.data import ClutteredMNIST
    from utils.localization.actions import Actor as CoreActor
    from utils.localization.boxes import sample_ordinal_boxes as core_sampler
    from utils.rl import discounted_returns, policy_loss  # noqa: F401

    assert Actor is CoreActor and sample_ordinal_boxes is core_sampler and ClutteredMNIST.__module__ == "utils.data.datasets"


def test_every_user_error_is_one_class_tree():
    """Every error class of the project derives from UserError, the one class the entry points catch."""
    import utils.errors as errors

    classes = [value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, Exception)]
    assert len(classes) >= 10 and all(issubclass(cls, errors.UserError) for cls in classes)
    defined_elsewhere = [f"{path}: class {match}" for path in product_files(".py") if path != "utils/errors.py"
                         for match in re.findall(r"^class (\w+)\((?:\w*Error|Exception|RuntimeError|ValueError)\)", open(os.path.join(ROOT, path)).read(), re.M)]
    assert not defined_elsewhere, defined_elsewhere
