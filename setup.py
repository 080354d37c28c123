"""Build of the compiled hot paths; every other piece of metadata is in setup.cfg."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "capture._fastdecode",
            sources=[
                "capture/_fastdecode.c",
                "capture/_fastdecode_frames.c",
                "capture/_fastdecode_records.c",
                "capture/_fastdecode_route.c",
            ],
            depends=["capture/_fastdecode.h", "capture/_fastdecode_api.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
        ),
        Extension(
            "reassembly._fasttrack",
            sources=[
                "reassembly/_fasttrack.c",
                "reassembly/_fasttrack_stream.c",
                "reassembly/_fasttrack_lines.c",
                "reassembly/_fasttrack_head.c",
                "reassembly/_fasttrack_http.c",
                "reassembly/_fasttrack_body.c",
                "reassembly/_fasttrack_table.c",
                "reassembly/_fasttrack_conn.c",
                "reassembly/_fasttrack_tracker.c",
                "reassembly/_fasttrack_feed.c",
            ],
            include_dirs=["capture"],  # _fastdecode_api.h: the record walk and frame decoder it calls
            depends=[
                "reassembly/_fasttrack.h",
                "reassembly/_fasttrack_http.h",
                "reassembly/_fasttrack_table.h",
                "reassembly/_fasttrack_conn.h",
                "capture/_fastdecode_api.h",
            ],
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
        ),
        Extension(
            "oob_analyzer.detection._base64_text",
            sources=["oob_analyzer/detection/_base64_text.c"],
            depends=["oob_analyzer/detection/_base64_bits.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
        ),
        Extension(
            "oob_analyzer.detection._json_points",
            sources=["oob_analyzer/detection/_json_points.c"],
            depends=["oob_analyzer/detection/_points.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
        ),
        Extension(
            "oob_analyzer.detection._request_points",
            sources=["oob_analyzer/detection/_request_points.c"],
            depends=["oob_analyzer/detection/_points.h", "oob_analyzer/detection/_base64_bits.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
        ),
        Extension(
            "oob_analyzer.detection._inspect",
            sources=[
                "oob_analyzer/detection/_inspect.c",
                "oob_analyzer/detection/_inspect_decode.c",
                "oob_analyzer/detection/_inspect_judge.c",
                "oob_analyzer/detection/_inspect_loops.c",
            ],
            depends=["oob_analyzer/detection/_inspect.h"],
            libraries=["dl"],  # dlopen/dlsym of libinjection's own shared object
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
        ),
    ]
)
