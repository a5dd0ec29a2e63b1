"""ctypes declarations of libqlm's public API (runtime/qlm.h), the library
lookup and the errors.  Everything here mirrors the C header; model.py builds
the Python interface on it."""
import ctypes
import ctypes.util
import os
import sys

# enum qlm_err (formats/qlm_format.h)
QLM_OK = 0
_E_IO, _E_NOMEM, _E_FORMAT, _E_VERSION, _E_CHECKSUM = 1, 2, 3, 4, 5
_E_RANGE, _E_NOTFOUND, _E_INVALID, _E_NONFINITE = 6, 7, 8, 9

# qlm_chat_render / qlm_chat_tokenize flags
CHAT_GENERATION_PROMPT = 1 << 0
CHAT_NO_THINKING = 1 << 1


class Error(Exception):
    """A libqlm error: str() is the library's one-line message (naming the
    file and the problem); code is its enum qlm_err value (0 for errors
    raised by the binding itself)."""

    def __init__(self, message, code=0):
        super().__init__(message)
        self.code = code


class LibraryError(Error):
    """libqlm could not be found or loaded."""


class FileError(Error, OSError):
    """A file could not be opened, read or mapped (QLM_E_IO)."""


class FormatError(Error):
    """A malformed, newer, corrupted or incomplete .qlm file (QLM_E_FORMAT,
    QLM_E_VERSION, QLM_E_CHECKSUM, QLM_E_NONFINITE)."""


class NotFoundError(FileError, LookupError):
    """Something named is not there (QLM_E_NOTFOUND): a missing file, or a
    tensor or metadata key a .qlm lacks."""


class ArgumentError(Error, ValueError):
    """A bad argument: out of range, or refused by the library
    (QLM_E_INVALID, QLM_E_RANGE)."""


class OutOfMemoryError(Error, MemoryError):
    """The library ran out of memory (QLM_E_NOMEM)."""


_CLASSES = {
    _E_IO: FileError, _E_NOMEM: OutOfMemoryError, _E_FORMAT: FormatError,
    _E_VERSION: FormatError, _E_CHECKSUM: FormatError, _E_NONFINITE: FormatError,
    _E_NOTFOUND: NotFoundError, _E_RANGE: ArgumentError, _E_INVALID: ArgumentError,
}


class QlmError(ctypes.Structure):
    """struct qlm_error.  The message buffer is larger than QLM_ERR_LEN (512)
    so that a library built with a longer one still writes inside it."""
    _fields_ = [("code", ctypes.c_int), ("msg", ctypes.c_char * 4096)]


def raise_for(rc, err):
    """Raise the Error subclass for a non-zero enum qlm_err."""
    if rc != QLM_OK:
        msg = err.msg.decode("utf-8", "replace") or "libqlm error %d" % rc
        raise _CLASSES.get(rc, Error)(msg, rc)


class Hparams(ctypes.Structure):
    """struct qlm_hparams"""
    _fields_ = [
        ("arch", ctypes.c_char * 16),
        ("n_layers", ctypes.c_int), ("hidden", ctypes.c_int), ("n_heads", ctypes.c_int),
        ("n_kv_heads", ctypes.c_int), ("head_dim", ctypes.c_int),
        ("ffn_hidden", ctypes.c_int), ("vocab_size", ctypes.c_int), ("max_pos", ctypes.c_int),
        ("rope_theta", ctypes.c_double), ("rms_eps", ctypes.c_double),
        ("tied", ctypes.c_bool), ("qk_norm", ctypes.c_bool), ("qkv_bias", ctypes.c_bool),
        ("wtype", ctypes.c_int), ("group", ctypes.c_int),
    ]


class Detok(ctypes.Structure):
    """struct qlm_detok: the streaming decoder's pending bytes."""
    _fields_ = [("pending", ctypes.c_uint8 * 8), ("n_pending", ctypes.c_size_t)]


class SamplerParams(ctypes.Structure):
    """struct qlm_sampler_params"""
    _fields_ = [("temp", ctypes.c_float), ("top_k", ctypes.c_int), ("top_p", ctypes.c_float),
                ("min_p", ctypes.c_float), ("seed", ctypes.c_uint64)]


class ChatMessage(ctypes.Structure):
    """struct qlm_chat_message"""
    _fields_ = [("role", ctypes.c_char_p), ("content", ctypes.c_char_p)]


_p = ctypes.c_void_p
_err = ctypes.POINTER(QlmError)
_size_p = ctypes.POINTER(ctypes.c_size_t)
_ids_pp = ctypes.POINTER(ctypes.POINTER(ctypes.c_int32))

# name: (restype, argtypes)
_PROTOTYPES = {
    "qlm_version": (ctypes.c_char_p, []),
    "qlm_isa_name": (ctypes.c_char_p, []),
    "qlm_model_open": (ctypes.c_int, [ctypes.POINTER(_p), ctypes.c_char_p, _err]),
    "qlm_model_free": (None, [_p]),
    "qlm_model_hparams": (ctypes.POINTER(Hparams), [_p]),
    "qlm_tokenize": (ctypes.c_int, [_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_bool,
                                    _ids_pp, _size_p, _err]),
    "qlm_n_tokens": (ctypes.c_int, [_p]),
    "qlm_token_bytes": (ctypes.c_void_p, [_p, ctypes.c_int32, _size_p]),
    "qlm_token_is_eos": (ctypes.c_bool, [_p, ctypes.c_int32]),
    "qlm_chat_template": (ctypes.c_char_p, [_p]),
    "qlm_detok_push": (ctypes.c_size_t, [_p, ctypes.POINTER(Detok), ctypes.c_int32,
                                         ctypes.c_char_p, ctypes.c_size_t]),
    "qlm_detok_flush": (ctypes.c_size_t, [ctypes.POINTER(Detok), ctypes.c_char_p,
                                          ctypes.c_size_t]),
    "qlm_chat_render": (ctypes.c_int, [_p, ctypes.c_char_p, ctypes.POINTER(ChatMessage),
                                       ctypes.c_size_t, ctypes.c_uint,
                                       ctypes.POINTER(ctypes.c_void_p), _size_p, _err]),
    "qlm_chat_tokenize": (ctypes.c_int, [_p, ctypes.c_char_p, ctypes.POINTER(ChatMessage),
                                         ctypes.c_size_t, ctypes.c_uint, _ids_pp, _size_p,
                                         _err]),
    "qlm_session_new": (ctypes.c_int, [ctypes.POINTER(_p), _p, ctypes.c_int, ctypes.c_int,
                                       _err]),
    "qlm_session_free": (None, [_p]),
    "qlm_session_pos": (ctypes.c_int, [_p]),
    "qlm_session_ctx": (ctypes.c_int, [_p]),
    "qlm_session_threads": (ctypes.c_int, [_p]),
    "qlm_session_rewind": (None, [_p, ctypes.c_int]),
    "qlm_eval": (ctypes.c_int, [_p, ctypes.POINTER(ctypes.c_int32), ctypes.c_int,
                                ctypes.c_bool, _err]),
    "qlm_logits": (ctypes.POINTER(ctypes.c_float), [_p]),
    "qlm_sampler_defaults": (None, [ctypes.POINTER(SamplerParams)]),
    "qlm_sampler_new": (ctypes.c_int, [ctypes.POINTER(_p), ctypes.POINTER(SamplerParams),
                                       ctypes.c_int, _err]),
    "qlm_sampler_free": (None, [_p]),
    "qlm_sample": (ctypes.c_int32, [_p, ctypes.POINTER(ctypes.c_float)]),
}

# The library's malloc'ed results are released with the C library's free
# (the process's symbols: qlm runs on Linux and macOS).
c_free = ctypes.CDLL(None).free
c_free.argtypes = [ctypes.c_void_p]
c_free.restype = None

_NAMES = {"darwin": ("libqlm.0.dylib", "libqlm.dylib")}
_loaded = {}


def _candidates(path):
    """Where libqlm is looked for, in order: path, $QLM_LIBRARY, next to the
    package, then the system's search (ctypes.util.find_library)."""
    if path:
        return [os.fspath(path)]
    if os.environ.get("QLM_LIBRARY"):
        return [os.environ["QLM_LIBRARY"]]
    here = os.path.dirname(os.path.abspath(__file__))
    names = _NAMES.get(sys.platform, ("libqlm.so.0", "libqlm.so"))
    found = [os.path.join(here, n) for n in names if os.path.exists(os.path.join(here, n))]
    system = ctypes.util.find_library("qlm")
    return found + ([system] if system else [])


def load(path=None):
    """The loaded libqlm (a ctypes.CDLL with prototypes set); LibraryError if
    none of the candidates loads."""
    tried = []
    for cand in _candidates(path):
        if cand in _loaded:
            return _loaded[cand]
        try:
            lib = ctypes.CDLL(cand)
        except OSError as e:
            tried.append(str(e))
            continue
        try:
            for name, (res, args) in _PROTOTYPES.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = res, args
        except AttributeError as e:
            raise LibraryError("%s: not a libqlm with this API (%s)" % (cand, e)) from None
        _loaded[cand] = lib
        return lib
    if tried:
        raise LibraryError("cannot load libqlm: " + "; ".join(tried))
    raise LibraryError("libqlm not found: pass library=PATH, set QLM_LIBRARY, or install "
                       "libqlm where the system's linker finds it")
