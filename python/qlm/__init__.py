"""qlm: run quantized Qwen3 models (.qlm files) on the CPU from Python.

A ctypes binding of libqlm's public C API (qlm.h); standard library only,
numpy optional (Model.logits returns an array when it is importable).

    import qlm
    with qlm.Model("model.qlm", threads=4, ctx=2048) as m:
        for piece in m.generate("The capital of France is", max_tokens=16, temperature=0):
            print(piece, end="", flush=True)
        reply = "".join(m.chat([{"role": "user", "content": "Hello!"}],
                               enable_thinking=False))

Errors are qlm.Error subclasses whose str() is libqlm's one-line message.
"""
from . import _lib
from ._lib import (ArgumentError, Error, FileError, FormatError, LibraryError, NotFoundError,
                   OutOfMemoryError)
from .model import Model

__version__ = "0.1.0"
__all__ = ["Model", "Error", "LibraryError", "FileError", "NotFoundError", "FormatError",
           "ArgumentError", "OutOfMemoryError", "library_version", "isa_name"]


def library_version(library=None):
    """The version libqlm was built as (qlm_version)."""
    return _lib.load(library).qlm_version().decode("ascii")


def isa_name(library=None):
    """The kernel set libqlm runs on this CPU: "scalar", "avx2", ... (qlm_isa_name)."""
    return _lib.load(library).qlm_isa_name().decode("ascii")
