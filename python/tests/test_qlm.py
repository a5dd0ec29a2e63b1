"""Tests of the qlm package against qlm-run on the same model.

Environment (tests/python.sh sets it): QLM_LIBRARY (the libqlm to test),
QLM_TEST_MODEL (a .qlm file; the tiny model's q8 conversion), QLM_RUN (the
qlm-run program), QLM_TEST_SRCDIR (the source tree, for
tests/data/chat/golden.json).
"""
import array
import json
import os
import subprocess
import sys
import tempfile
import unittest

import qlm
import qlm.model

MODEL = os.environ.get("QLM_TEST_MODEL", "")
QLM_RUN = os.environ.get("QLM_RUN", "")
SRCDIR = os.environ.get("QLM_TEST_SRCDIR", "")
THREADS = 2

PROMPT = "Once upon a time"
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak. Émile à Zürich 東京 🙂"


def qlm_run(*args, stdin=None):
    """stdout of qlm-run MODEL ARGS... (which must succeed), as bytes."""
    r = subprocess.run([QLM_RUN, MODEL, "-t", str(THREADS)] + list(args), input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if r.returncode != 0:
        raise AssertionError("qlm-run %s: status %d: %s" % (" ".join(args), r.returncode,
                                                           r.stderr.decode(errors="replace")))
    return r.stdout


@unittest.skipUnless(os.path.isfile(MODEL), "QLM_TEST_MODEL is not a file")
class ModelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = qlm.Model(MODEL, threads=THREADS, ctx=512)

    @classmethod
    def tearDownClass(cls):
        cls.m.close()

    def greedy(self, prompt, n, **kw):
        return "".join(self.m.generate(prompt, max_tokens=n, temperature=0, **kw))

    # ---- against qlm-run ----------------------------------------------------

    @unittest.skipUnless(QLM_RUN, "QLM_RUN is not set")
    def test_tokenize_as_qlm_run(self):
        for text in (PROMPT, TEXT, "a<|im_start|>user\nb<|im_end|>"):
            want = [int(t) for t in qlm_run("-p", text, "--tokenize").split()]
            self.assertEqual(self.m.tokenize(text), want, text)
            plain = [int(t) for t in qlm_run("-p", text, "--tokenize", "--no-special").split()]
            self.assertEqual(self.m.tokenize(text, special=False), plain, text)
        im_start = self.m.tokenize("<|im_start|>")
        self.assertEqual(len(im_start), 1)
        self.assertGreater(len(self.m.tokenize("<|im_start|>", special=False)), 1)

    @unittest.skipUnless(QLM_RUN, "QLM_RUN is not set")
    def test_greedy_text_as_qlm_run(self):
        for prompt, n in ((PROMPT, 40), (TEXT, 25)):
            want = qlm_run("-p", prompt, "-n", str(n), "--temp", "0", "-q").decode("utf-8")
            got = self.greedy(prompt, n)
            self.assertGreater(len(got), 10)
            self.assertEqual(got + "\n", want)

    @unittest.skipUnless(QLM_RUN, "QLM_RUN is not set")
    def test_logits_as_qlm_run(self):
        ids = self.m.tokenize(TEXT)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "ids"), "w") as f:
                f.write(" ".join(map(str, ids)))
            out = os.path.join(d, "logits.f32")
            qlm_run("--tokens", os.path.join(d, "ids"), "-n", "0", "-q", "--logits-out", out)
            with open(out, "rb") as f:
                want = f.read()
        self.assertEqual(len(want), len(ids) * self.m.vocab_size * 4)
        got = self.m.logits(ids)
        if qlm.model._np is not None:
            self.assertEqual(got.shape, (len(ids), self.m.vocab_size))
            self.assertEqual(got.astype("<f4").tobytes(), want)
        # without numpy: array.array rows, the same values
        saved, qlm.model._np = qlm.model._np, None
        try:
            rows = self.m.logits(ids)
        finally:
            qlm.model._np = saved
        self.assertEqual(len(rows), len(ids))
        self.assertTrue(all(isinstance(r, array.array) and r.typecode == "f" for r in rows))
        flat = array.array("f", b"".join(r.tobytes() for r in rows))
        if sys.byteorder == "big":
            flat.byteswap()
        self.assertEqual(flat.tobytes(), want)

    @unittest.skipUnless(QLM_RUN, "QLM_RUN is not set")
    def test_chat_as_qlm_run(self):
        want = qlm_run("--chat", "--no-think", "--temp", "0", "-n", "12", "-q",
                       stdin=b"Hello there.\n").decode("utf-8")
        got = "".join(self.m.chat([{"role": "user", "content": "Hello there."}], max_tokens=12,
                                  temperature=0, enable_thinking=False))
        self.assertGreater(len(got), 3)
        self.assertEqual(got + "\n", want)

    # ---- the package on its own ---------------------------------------------

    def test_detokenize(self):
        self.assertEqual(self.m.detokenize(self.m.tokenize(TEXT)), TEXT)
        self.assertEqual(self.m.detokenize([]), "")
        with self.assertRaises(qlm.ArgumentError):
            self.m.detokenize([self.m.vocab_size])

    def test_generate_streams_utf8_pieces(self):
        pieces = list(self.m.generate("東京 🙂 Émile", max_tokens=30, temperature=0))
        self.assertGreater(len(pieces), 5)
        self.assertTrue(all(isinstance(p, str) and p for p in pieces))
        self.assertNotIn("\ufffd", "".join(pieces))

    def test_generate_from_ids_and_cache_reuse(self):
        text = self.greedy(PROMPT, 20)
        self.assertEqual(self.greedy(self.m.tokenize(PROMPT), 20), text)
        # a longer prompt sharing the cached prefix, then the first again
        self.greedy(PROMPT + text[:5], 5)
        self.m.logits(self.m.tokenize(TEXT))
        self.assertEqual(self.greedy(PROMPT, 20), text)

    def test_max_tokens(self):
        self.assertEqual(list(self.m.generate(PROMPT, max_tokens=0)), [])
        one = self.greedy(PROMPT, 1)
        self.assertTrue(self.greedy(PROMPT, 10).startswith(one))

    def test_stop_strings(self):
        full = self.greedy(PROMPT, 40)
        stop = full[len(full) // 2:len(full) // 2 + 3]
        cut = full.index(stop)
        self.assertEqual(self.greedy(PROMPT, 40, stop=stop), full[:cut])
        self.assertEqual(self.greedy(PROMPT, 40, stop=[stop, "\x00never"]), full[:cut])
        self.assertEqual(self.greedy(PROMPT, 40, stop=["\x00never"]), full)
        # the earliest of several; a stop string at the very start gives nothing
        first = full[1:3]
        self.assertEqual(self.greedy(PROMPT, 40, stop=[stop, first]), full[:full.index(first)])
        self.assertEqual(self.greedy(PROMPT, 40, stop=full[:2]), "")
        with self.assertRaises(qlm.ArgumentError):
            self.m.generate(PROMPT, stop=[""])

    def test_sampling(self):
        a = "".join(self.m.generate(PROMPT, max_tokens=30, temperature=1.0, seed=7))
        b = "".join(self.m.generate(PROMPT, max_tokens=30, temperature=1.0, seed=7, top_k=0,
                                    top_p=1.0, min_p=0.0))
        self.assertEqual(a, "".join(self.m.generate(PROMPT, max_tokens=30, temperature=1.0,
                                                    seed=7)))
        texts = {"".join(self.m.generate(PROMPT, max_tokens=30, temperature=1.5, seed=s,
                                         top_k=0, top_p=1.0, min_p=0.0)) for s in range(4)}
        self.assertGreater(len(texts | {b}), 1)
        with self.assertRaises(qlm.ArgumentError) as cm:
            self.m.generate(PROMPT, temperature=-1)
        self.assertIn("temperature", str(cm.exception))

    def test_superseded_generator(self):
        g = self.m.generate(PROMPT, max_tokens=20, temperature=0)
        next(g)
        self.m.tokenize("x")  # does not touch the cache
        next(g)
        self.m.logits(self.m.tokenize(PROMPT))
        with self.assertRaises(qlm.Error):
            list(g)

    def test_chat_template(self):
        with open(os.path.join(SRCDIR, "tests", "data", "chat", "golden.json"),
                  encoding="utf-8") as f:
            cases = [c for c in json.load(f)["cases"] if c["template"] == "qwen3"]
        self.assertIn("enable_thinking", self.m.chat_template)
        for c in cases:
            got = self.m.apply_chat_template(c["messages"], c["add_generation_prompt"],
                                             c.get("enable_thinking", True))
            self.assertEqual(got, c["text"])
        with self.assertRaises(qlm.ArgumentError):
            self.m.apply_chat_template([{"role": "narrator", "content": "x"}])
        with self.assertRaises(qlm.ArgumentError):
            self.m.apply_chat_template([{"content": "x"}])
        with self.assertRaises(qlm.ArgumentError):
            self.m.chat([])

    @unittest.skipUnless(QLM_RUN, "QLM_RUN is not set")
    def test_chat_until_context_full_as_qlm_run(self):
        # no limit: the tiny model writes no <|im_end|>, so the context fills
        want = qlm_run("--chat", "--no-think", "--temp", "0", "--ctx", "64", "-q",
                       stdin=b"Hello there.\n").decode("utf-8")
        with qlm.Model(MODEL, threads=THREADS, ctx=64) as m:
            got = "".join(m.chat([{"role": "user", "content": "Hello there."}], temperature=0,
                                 enable_thinking=False))
        self.assertGreater(len(got), 40)
        self.assertEqual(got + "\n", want)

    def test_prompt_errors(self):
        with self.assertRaises(qlm.ArgumentError):
            self.m.generate("")
        with self.assertRaises(qlm.ArgumentError) as cm:
            self.m.generate([1] * 513)
        self.assertIn("context of 512", str(cm.exception))
        with self.assertRaises(qlm.ArgumentError):
            self.m.logits([-1])
        with self.assertRaises(TypeError):
            self.m.tokenize(b"bytes")


@unittest.skipUnless(os.path.isfile(MODEL), "QLM_TEST_MODEL is not a file")
class LifetimeTest(unittest.TestCase):
    def test_context_manager_and_close(self):
        with qlm.Model(MODEL, threads=1, ctx=64) as m:
            self.assertEqual(m.ctx, 64)
            self.assertEqual(m.threads, 1)
            self.assertEqual(m.arch, "qwen3")
        with self.assertRaises(qlm.Error) as cm:
            m.tokenize("x")
        self.assertIn("closed", str(cm.exception))
        m.close()  # twice is fine

    def test_default_context(self):
        with qlm.Model(MODEL) as m:
            self.assertEqual(m.ctx, min(4096, m.max_ctx))

    def test_context_too_large(self):
        with self.assertRaises(qlm.ArgumentError):
            qlm.Model(MODEL, ctx=1 << 30)
        with self.assertRaises(qlm.ArgumentError):
            qlm.Model(MODEL, ctx=0)


class ErrorTest(unittest.TestCase):
    def test_missing_file(self):
        path = os.path.join(tempfile.gettempdir(), "qlm-no-such-file.qlm")
        with self.assertRaises(qlm.FileError) as cm:
            qlm.Model(path)
        e = cm.exception
        self.assertIsInstance(e, qlm.Error)
        self.assertIsInstance(e, OSError)
        self.assertIn(path, str(e))
        self.assertNotIn("\n", str(e))
        self.assertNotEqual(e.code, 0)

    def test_not_a_qlm_file(self):
        with tempfile.NamedTemporaryFile(suffix=".qlm") as f:
            f.write(b"this is text, not a model\n" * 20)
            f.flush()
            with self.assertRaises(qlm.FormatError) as cm:
                qlm.Model(f.name)
        self.assertIn(f.name, str(cm.exception))

    def test_library_not_found(self):
        with self.assertRaises(qlm.LibraryError):
            qlm.Model(MODEL or "x.qlm", library="/nonexistent/libqlm.so")

    def test_versions(self):
        self.assertEqual(qlm.library_version(), qlm.__version__)
        self.assertIn(qlm.isa_name(), ("scalar", "avx2", "avxvnni", "avx512vnni", "neon"))


if __name__ == "__main__":
    unittest.main()
