"""Point the ROS 2 wheels' CMake exports at this venv's include paths.

The PyPI wheels were built in a manylinux container, and their installed
``*Export.cmake`` files still name that container's Python and NumPy include
directories (``/opt/python/cp311-cp311/...``). CMake refuses a missing
INTERFACE_INCLUDE_DIRECTORIES entry, so building any interface package against
the venv fails at generate time until they are rewritten. Run with the venv's
own interpreter; repeating it is harmless.
"""
import pathlib
import sys
import sysconfig

import numpy

BUILD_PYTHON_INCLUDE = '/opt/python/cp311-cp311/include/python3.11'
BUILD_NUMPY_INCLUDE = '/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include'


def main(prefix: str) -> int:
    replacements = {
        BUILD_PYTHON_INCLUDE: sysconfig.get_paths()['include'],
        BUILD_NUMPY_INCLUDE: numpy.get_include(),
    }
    fixed = 0
    for path in pathlib.Path(prefix, 'share').glob('*/cmake/*.cmake'):
        text = path.read_text()
        if '/opt/python/cp311-cp311' not in text:
            continue
        for old, new in replacements.items():
            text = text.replace(old, new)
        path.write_text(text)
        fixed += 1
    if fixed:
        print(f'[setup] rewrote build-machine include paths in {fixed} CMake files')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else sys.prefix))
