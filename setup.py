"""Build of the compiled hot path; every other piece of metadata is in setup.cfg."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "capture._fastdecode",
            sources=["capture/_fastdecode.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
        )
    ]
)
