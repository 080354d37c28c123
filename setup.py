"""Build of the compiled hot paths; every other piece of metadata is in setup.cfg."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "capture._fastdecode",
            sources=["capture/_fastdecode.c", "capture/_fastdecode_frames.c", "capture/_fastdecode_records.c"],
            depends=["capture/_fastdecode.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
        ),
        Extension(
            "oob_analyzer.detection._base64_text",
            sources=["oob_analyzer/detection/_base64_text.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
        ),
    ]
)
