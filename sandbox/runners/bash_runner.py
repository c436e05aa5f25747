"""Starts the bash kernel (bash_kernel.py; see PROTOCOL.md).

Started as `/usr/bin/python3 -I -u bash_runner.py`. Kept this small for the same
reason as python_runner.py: the main script is compiled at every start, the module
it imports comes from the build's precompiled .pyc.
"""

import os
import sys

# -I leaves the runner directory off sys.path; it goes off again so that the shell's
# Python children do not see it.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bash_kernel  # noqa: E402

del sys.path[0]

bash_kernel.main()
