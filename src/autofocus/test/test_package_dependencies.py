"""Every third-party module a package imports is a run dependency in its package.xml, so
`rosdep install` followed by `ros2 run autofocus recorder` works on a plain ROS install.

Imports are read from the sources (ast), not from a running interpreter: an import that
only one code path reaches counts too.
"""
import ast
import pathlib
import sys
import xml.etree.ElementTree as ElementTree

import pytest

SRC = pathlib.Path(__file__).resolve().parents[2]
README = SRC.parent / 'README.md'
PACKAGES = ('autofocus', 'autofocus_motor')

# Import name -> rosdep key, where they differ. A ROS package imports under its own name
# (rclpy, sensor_msgs, cv_bridge): no entry needed.
ROSDEP_KEYS = {
    'cv2': 'python3-opencv',
    'numpy': 'python3-numpy',
    'yaml': 'python3-yaml',
    'matplotlib': 'python3-matplotlib',
    'tqdm': 'python3-tqdm',
    'gpiozero': 'python3-gpiozero',
    'skimage': 'python3-skimage',
    'scipy': 'python3-scipy',
    'aiohttp': 'python3-aiohttp',
    'PIL': 'python3-pil',
    # Only on PyPI: rosdep's pip keys.
    'rosbags': 'python3-rosbags-pip',
    'mcap': 'python3-mcap-pip',
}
PIP_ONLY = {'rosbags', 'mcap'}
# Libraries for one optional feature, imported only inside the function that uses it (a
# device the user chose, a flag): not run dependencies; the README says how to get each.
OPTIONAL = {
    'linuxpy': 'pip install linuxpy',             # focus_control:=camera on a V4L2 camera
    'gphoto2': 'pip install gphoto2',             # camera_source:=gphoto2 (a DSLR)
    'picamera2': 'apt install python3-picamera2',  # camera_source:=picamera2 (Raspberry Pi OS)
    'wsdiscovery': 'pip install WSDiscovery',     # focus_fleet --discover
}


def third_party_imports(package: str) -> dict[str, set[str]]:
    """Top-level modules imported by a package's code and launch files -> files importing them."""
    root = SRC / package
    files = [*(root / package).rglob('*.py'), *(root / 'launch').glob('*.py')]
    found = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split('.')[0]
                if top != package and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(root)))
    return found


def exec_depends(package: str) -> set[str]:
    tree = ElementTree.parse(SRC / package / 'package.xml')
    return {element.text.strip() for tag in ('exec_depend', 'depend')
            for element in tree.getroot().iter(tag)}


@pytest.mark.parametrize('package', PACKAGES)
def test_every_import_is_an_exec_depend(package):
    imports = third_party_imports(package)
    assert 'rclpy' in imports   # the scan sees the code at all
    declared = exec_depends(package)
    missing = {module: f'<exec_depend>{ROSDEP_KEYS.get(module, module)}</exec_depend> '
                       f'(imported by {", ".join(sorted(files))})'
               for module, files in imports.items()
               if ROSDEP_KEYS.get(module, module) not in declared and module not in OPTIONAL}
    assert not missing, f'{package}/package.xml lacks: {missing}'


def test_the_scan_finds_the_bag_libraries():
    imports = third_party_imports('autofocus')
    assert {'rosbags', 'mcap', 'tqdm', 'cv2', 'numpy'} <= set(imports)


def test_readme_says_how_to_install_the_pip_only_ones_on_a_ros_install():
    text = README.read_text()
    assert 'rosdep install' in text and 'PIP_BREAK_SYSTEM_PACKAGES=1' in text
    assert any('pip install' in line and all(module in line for module in PIP_ONLY)
               for line in text.splitlines())


def module_level_imports(package: str) -> set[str]:
    """Top-level modules imported at module level (not inside a function) by a package."""
    root = SRC / package / package
    found = set()
    for path in root.rglob('*.py'):
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            for inner in ast.walk(node) if not isinstance(
                    node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else ():
                if isinstance(inner, ast.Import):
                    found.update(alias.name.split('.')[0] for alias in inner.names)
                elif isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
                    found.add(inner.module.split('.')[0])
    return found


def test_optional_libraries_load_only_when_their_feature_is_used_and_the_readme_says_how():
    assert module_level_imports('autofocus') & set(OPTIONAL) == set()
    text = README.read_text()
    for module, install in OPTIONAL.items():
        assert install in text, f'README: say how to install {module} ({install!r})'
