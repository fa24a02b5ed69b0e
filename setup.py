"""Build of ltrcompile's compiled parts.

* ``ltrcompile._libm`` -- vectorised wrappers around the C library's ``exp``/``expf``/``logf``/...
  The interpreter uses them for output transforms, because bit-exact parity with XGBoost and
  LightGBM needs the same libm the native libraries call (numpy's own SIMD ``exp`` differs by ulps).
* The Jinja2 templates of the Cython backend live in the top-level ``templates/`` folder; they are
  copied into the package (``ltrcompile/templates``) when a wheel or sdist is built.
"""

import os
import shutil

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildPyWithTemplates(build_py):
    """Copy ``templates/*.j2`` into the built package so non-editable installs find them."""

    def run(self):
        super().run()
        src = os.path.join(HERE, "templates")
        if os.path.isdir(src):
            dst = os.path.join(self.build_lib, "ltrcompile", "templates")
            os.makedirs(dst, exist_ok=True)
            for name in os.listdir(src):
                if name.endswith(".j2"):
                    shutil.copy2(os.path.join(src, name), os.path.join(dst, name))


extensions = [
    Extension(
        "ltrcompile._libm",
        ["ltrcompile/_libm.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        libraries=["m"],
        extra_compile_args=["-O2", "-fno-fast-math", "-ffp-contract=off"],
    ),
    # TreeSHAP contributions kernel (model-independent; tables built by backends/cython/contrib.py)
    Extension(
        "ltrcompile.backends.cython._treeshap",
        ["ltrcompile/backends/cython/_treeshap.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O2", "-fno-fast-math", "-ffp-contract=off"],
    ),
]

setup(
    ext_modules=cythonize(extensions, language_level=3),
    cmdclass={"build_py": BuildPyWithTemplates},
)
