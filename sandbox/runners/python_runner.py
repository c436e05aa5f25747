"""Starts the Python kernel (python_kernel.py; see PROTOCOL.md).

Started as `/usr/bin/python3 -I -u python_runner.py`. A script run as the main
program is compiled on every start; a module it imports loads from the .pyc the
build put in __pycache__. So this file stays this small.
"""

import os
import sys

# -I leaves the runner directory off sys.path; it goes off again so that user code
# does not import from it.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import python_kernel  # noqa: E402

del sys.path[0]

python_kernel.main()
