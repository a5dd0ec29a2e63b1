"""qlm.Model: a .qlm model and one session (its KV cache) over libqlm.

Each call that evaluates (generate, chat, logits) starts from the tokens its
prompt shares with what the cache holds, so a chat that resends its history
evaluates only the new turn.  A Model is used by one thread at a time.
"""
import array
import ctypes
import operator
import os

from . import _lib
from ._lib import ArgumentError, Error

try:
    import numpy as _np
except ImportError:  # numpy is optional: logits are then array.array rows
    _np = None

DEFAULT_CTX = 4096  # qlm-run's default context, at most the model's maximum


def _int(name, v, lo, hi):
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError("%s must be an integer, not %s" % (name, type(v).__name__)) from None
    if not lo <= v <= hi:
        raise ArgumentError("%s %d: must be in [%d, %d]" % (name, v, lo, hi))
    return v


def _stops(stop):
    if stop is None:
        return ()
    stops = (stop,) if isinstance(stop, str) else tuple(stop)
    for s in stops:
        if not isinstance(s, str) or not s:
            raise ArgumentError("stop: each stop string must be a non-empty str, not %r" % (s,))
    return stops


def _first_stop(text, stops):
    """Index of the earliest stop string in text, or -1."""
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else -1


def _held_back(text, stops):
    """Length of the longest end of text that begins a stop string: it may
    become one with the next piece, so it is not yielded yet."""
    keep = 0
    for s in stops:
        for k in range(min(len(text), len(s) - 1), keep, -1):
            if text.endswith(s[:k]):
                keep = k
                break
    return keep


class _Decoder:
    """The library's streaming detokenizer: push returns only complete UTF-8
    characters, so a character split over two tokens is never cut."""

    def __init__(self, model):
        self._lib, self._m = model._lib, model._m
        self._d = _lib.Detok()
        self._buf = ctypes.create_string_buffer(64)

    def push(self, tok):
        n = ctypes.c_size_t()
        self._lib.qlm_token_bytes(self._m, tok, ctypes.byref(n))
        if ctypes.sizeof(self._buf) < n.value + 16:  # qlm_detok_push's cap
            self._buf = ctypes.create_string_buffer(n.value + 64)
        w = self._lib.qlm_detok_push(self._m, ctypes.byref(self._d), tok, self._buf,
                                     ctypes.sizeof(self._buf))
        return self._buf.raw[:w].decode("utf-8", "replace")

    def flush(self):
        w = self._lib.qlm_detok_flush(ctypes.byref(self._d), self._buf, ctypes.sizeof(self._buf))
        return self._buf.raw[:w].decode("utf-8", "replace")


class _Sampler:
    """A qlm_sampler, freed by close() or, for a generator never started, by
    the garbage collector."""

    def __init__(self, lib, params, vocab):
        self._lib, self.p = lib, ctypes.c_void_p()
        err = _lib.QlmError()
        _lib.raise_for(lib.qlm_sampler_new(ctypes.byref(self.p), ctypes.byref(params), vocab,
                                           ctypes.byref(err)), err)

    def close(self):
        if self.p:
            self._lib.qlm_sampler_free(self.p)
            self.p = ctypes.c_void_p()

    __del__ = close


class Model:
    """A .qlm model, mapped (no weight is copied), with a context of ctx
    tokens (default min(4096, the model's maximum)) computed by threads
    threads (default: the physical cores).  library: the path of libqlm, else
    $QLM_LIBRARY, the library next to this package, or the system's.  Use it
    in a with statement, or call close()."""

    def __init__(self, path, threads=None, ctx=None, library=None):
        self._lib = lib = _lib.load(library)
        self._m = self._s = None
        self._cache = []   # the token ids in the KV cache, in order
        self._epoch = 0    # bumped by every call that takes the session over
        err = _lib.QlmError()
        m = ctypes.c_void_p()
        _lib.raise_for(lib.qlm_model_open(ctypes.byref(m), os.fsencode(path),
                                          ctypes.byref(err)), err)
        self._m = m
        try:
            hp = lib.qlm_model_hparams(m).contents
            self.vocab_size = hp.vocab_size
            self.max_ctx = hp.max_pos
            self.arch = hp.arch.decode("ascii", "replace")
            ctx = min(DEFAULT_CTX, hp.max_pos) if ctx is None else _int("ctx", ctx, 1, 1 << 31)
            threads = 0 if threads is None else _int("threads", threads, 1, 1024)
            s = ctypes.c_void_p()
            _lib.raise_for(lib.qlm_session_new(ctypes.byref(s), m, ctx, threads,
                                               ctypes.byref(err)), err)
            self._s = s
        except BaseException:
            self.close()
            raise

    # ---- lifetime ------------------------------------------------------------

    def close(self):
        """Free the session and unmap the model; further calls raise Error."""
        if getattr(self, "_s", None):
            self._lib.qlm_session_free(self._s)
        if getattr(self, "_m", None):
            self._lib.qlm_model_free(self._m)
        self._s = self._m = None
        self._epoch = getattr(self, "_epoch", 0) + 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _open(self):
        if not self._m:
            raise Error("the model is closed")

    # ---- properties ----------------------------------------------------------

    @property
    def ctx(self):
        """The context length in tokens."""
        self._open()
        return self._lib.qlm_session_ctx(self._s)

    @property
    def threads(self):
        self._open()
        return self._lib.qlm_session_threads(self._s)

    @property
    def chat_template(self):
        """The model's chat template (Jinja source), "" if none."""
        self._open()
        return self._lib.qlm_chat_template(self._m).decode("utf-8", "replace")

    # ---- tokens --------------------------------------------------------------

    def tokenize(self, text, special=True):
        """Token ids of text.  special: text such as <|im_start|> is that
        special token (else plain text)."""
        self._open()
        if not isinstance(text, str):
            raise TypeError("text must be a str, not %s" % type(text).__name__)
        b = text.encode("utf-8")
        ids = ctypes.POINTER(ctypes.c_int32)()
        n = ctypes.c_size_t()
        err = _lib.QlmError()
        rc = self._lib.qlm_tokenize(self._m, b, len(b), bool(special), ctypes.byref(ids),
                                    ctypes.byref(n), ctypes.byref(err))
        try:
            _lib.raise_for(rc, err)
            return ids[:n.value]
        finally:
            _lib.c_free(ctypes.cast(ids, ctypes.c_void_p))

    def _ids(self, tokens):
        """tokens as a list of ids in the vocabulary, or tokenize(tokens)."""
        if isinstance(tokens, str):
            ids = self.tokenize(tokens)
        else:
            ids = [_int("token id", t, 0, self.vocab_size - 1) for t in tokens]
        if not ids:
            raise ArgumentError("empty prompt (no tokens)")
        return ids

    def detokenize(self, ids):
        """The text of token ids (bytes that are not UTF-8 become U+FFFD)."""
        self._open()
        d = _Decoder(self)
        parts = [d.push(_int("token id", t, 0, self.vocab_size - 1)) for t in ids]
        parts.append(d.flush())
        return "".join(parts)

    # ---- evaluation ----------------------------------------------------------

    def _take(self):
        """Take the session over: generators started before now stop."""
        self._open()
        self._epoch += 1
        return self._epoch

    def _held(self, epoch):
        if epoch != self._epoch:
            raise Error("generate: the model was used by another call (or closed) since "
                        "this generator started")

    def _eval(self, ids, all_logits):
        err = _lib.QlmError()
        arr = (ctypes.c_int32 * len(ids))(*ids)
        _lib.raise_for(self._lib.qlm_eval(self._s, arr, len(ids), all_logits,
                                          ctypes.byref(err)), err)

    def _fits(self, ids):
        ctx = self._lib.qlm_session_ctx(self._s)
        if len(ids) > ctx:
            raise ArgumentError("the prompt is %d tokens, longer than the context of %d tokens"
                                % (len(ids), ctx))

    def _prefill(self, ids):
        """Evaluate ids after the longest prefix the cache already holds (at
        least the last id is evaluated: its logits are the next token's)."""
        self._fits(ids)
        k = 0
        limit = min(len(self._cache), len(ids) - 1)
        while k < limit and self._cache[k] == ids[k]:
            k += 1
        self._lib.qlm_session_rewind(self._s, k)
        del self._cache[k:]
        self._eval(ids[k:], False)
        self._cache = list(ids)

    def logits(self, tokens):
        """Logits of every position of tokens (ids, or a str to tokenize):
        a (positions, vocab_size) float32 numpy array when numpy is
        importable, else a list of array.array('f') rows."""
        self._take()
        ids = self._ids(tokens)
        self._fits(ids)
        self._lib.qlm_session_rewind(self._s, 0)
        self._cache = []
        self._eval(ids, True)
        self._cache = ids
        ptr, n, v = self._lib.qlm_logits(self._s), len(ids), self.vocab_size
        if _np is not None:
            return _np.ctypeslib.as_array(ptr, shape=(n, v)).copy()
        flat = array.array("f", ctypes.string_at(ptr, n * v * ctypes.sizeof(ctypes.c_float)))
        return [flat[i * v:(i + 1) * v] for i in range(n)]

    # ---- generation ----------------------------------------------------------

    def _sampler(self, temperature, top_p, top_k, min_p, seed):
        p = _lib.SamplerParams()
        self._lib.qlm_sampler_defaults(ctypes.byref(p))
        if temperature is not None:
            p.temp = float(temperature)
        if top_p is not None:
            p.top_p = float(top_p)
        if top_k is not None:
            p.top_k = _int("top_k", top_k, 0, (1 << 31) - 1)
        if min_p is not None:
            p.min_p = float(min_p)
        p.seed = (int.from_bytes(os.urandom(8), "little") if seed is None
                  else _int("seed", seed, 0, (1 << 64) - 1))
        return _Sampler(self._lib, p, self.vocab_size)

    def generate(self, prompt, max_tokens=128, temperature=None, top_p=None, top_k=None,
                 min_p=None, seed=None, stop=None):
        """Generate from prompt (a str, tokenized with special tokens, or a
        list of ids) and return an iterator of text pieces as they come.
        Stops at an end token, after max_tokens tokens (None: no limit), when
        the context is full, or before the first of the stop strings (which
        is not returned).  Sampling: temperature (0: greedy), top_p, top_k,
        min_p, seed (None: random); left out, libqlm's defaults
        (qlm_sampler_defaults)."""
        epoch = self._take()
        ids = self._ids(prompt)
        return self._stream(epoch, ids, max_tokens, stop, temperature, top_p, top_k, min_p,
                            seed)

    def _stream(self, epoch, ids, max_tokens, stop, *sampling):
        if max_tokens is not None:
            max_tokens = _int("max_tokens", max_tokens, 0, 1 << 62)
        stops = _stops(stop)
        self._fits(ids)
        return self._run(epoch, ids, max_tokens, stops, self._sampler(*sampling))

    def _run(self, epoch, ids, max_tokens, stops, sampler):
        lib, m, s = self._lib, self._m, self._s
        try:
            self._held(epoch)
            self._prefill(ids)
            dec = _Decoder(self)
            held, n, ctx = "", 0, lib.qlm_session_ctx(s)
            while max_tokens is None or n < max_tokens:
                tok = lib.qlm_sample(sampler.p, lib.qlm_logits(s))
                if lib.qlm_token_is_eos(m, tok):
                    break
                n += 1
                held += dec.push(tok)
                cut = _first_stop(held, stops)
                if cut >= 0:
                    if cut:
                        yield held[:cut]
                    return
                out = len(held) - _held_back(held, stops)
                if out:
                    yield held[:out]
                    held = held[out:]
                if n == max_tokens or lib.qlm_session_pos(s) >= ctx:
                    break
                self._held(epoch)
                self._eval([tok], False)
                self._cache.append(tok)
            held += dec.flush()
            cut = _first_stop(held, stops)
            held = held[:cut] if cut >= 0 else held
            if held:
                yield held
        finally:
            sampler.close()

    # ---- chat ----------------------------------------------------------------

    def _messages(self, messages):
        msgs = list(messages)
        arr = (_lib.ChatMessage * max(len(msgs), 1))()
        for i, msg in enumerate(msgs):
            try:
                role, content = msg["role"], msg["content"]
            except (TypeError, KeyError):
                raise ArgumentError("chat message %d: not a mapping with 'role' and 'content'"
                                    % i) from None
            if not isinstance(role, str) or not isinstance(content, str):
                raise TypeError("chat message %d: role and content must be str" % i)
            arr[i].role, arr[i].content = role.encode("utf-8"), content.encode("utf-8")
        return arr, len(msgs)

    @staticmethod
    def _flags(add_generation_prompt, enable_thinking):
        return ((_lib.CHAT_GENERATION_PROMPT if add_generation_prompt else 0) |
                (0 if enable_thinking else _lib.CHAT_NO_THINKING))

    def apply_chat_template(self, messages, add_generation_prompt=True, enable_thinking=True):
        """messages ([{"role", "content"}...]) rendered by the model's chat
        template (Qwen3's or plain ChatML: qlm_chat_render), as a str."""
        self._open()
        arr, n = self._messages(messages)
        text, length, err = ctypes.c_void_p(), ctypes.c_size_t(), _lib.QlmError()
        rc = self._lib.qlm_chat_render(self._m, None, arr, n,
                                       self._flags(add_generation_prompt, enable_thinking),
                                       ctypes.byref(text), ctypes.byref(length),
                                       ctypes.byref(err))
        try:
            _lib.raise_for(rc, err)
            return ctypes.string_at(text, length.value).decode("utf-8", "replace")
        finally:
            _lib.c_free(text)

    def chat(self, messages, max_tokens=None, enable_thinking=True, temperature=None,
             top_p=None, top_k=None, min_p=None, seed=None, stop=None):
        """The assistant's reply to messages ([{"role", "content"}...]) in the
        model's chat template, as an iterator of text pieces (as generate;
        max_tokens None: until the reply ends or the context is full).
        enable_thinking=False pre-fills an empty <think> block (Qwen3).
        Special-token text inside the messages stays text."""
        epoch = self._take()
        arr, n = self._messages(messages)
        ids, count, err = ctypes.POINTER(ctypes.c_int32)(), ctypes.c_size_t(), _lib.QlmError()
        rc = self._lib.qlm_chat_tokenize(self._m, None, arr, n, self._flags(True, enable_thinking),
                                         ctypes.byref(ids), ctypes.byref(count),
                                         ctypes.byref(err))
        try:
            _lib.raise_for(rc, err)
            prompt = ids[:count.value]
        finally:
            _lib.c_free(ctypes.cast(ids, ctypes.c_void_p))
        return self._stream(epoch, prompt, max_tokens, stop, temperature, top_p, top_k, min_p,
                            seed)

    def __repr__(self):
        state = "closed" if not self._m else "%s, ctx %d" % (self.arch, self.ctx)
        return "<qlm.Model %s>" % state
