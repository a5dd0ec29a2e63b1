// Golden Qwen3 token ids for tests/check_tokenizer.c, from an independent tokenizer
// (Hugging Face's pure-JS tokenizers.js loading the real Qwen3 tokenizer.json).
//
// usage: node tools/golden_qwen3.mjs TOKENIZER_DIR > tests/data/tokenizer/qwen3_golden.json
//        node tools/golden_qwen3.mjs TOKENIZER_DIR TEXT_FILE... > tests/data/tokenizer/qwen3_text_counts.json
//   TOKENIZER_DIR holds tokenizer.json (uncompressed: gzip -dc the committed .gz into a
//   scratch dir) and tokenizer_config.json.  The first form prints [{"text", "ids"}...] for
//   the strings below; the second [{"file", "bytes", "count"}...], the token counts of whole
//   files (.gz inflated; named by basename without .gz).  Special tokens written inline are
//   matched whole; no BOS/EOS.
// Needs `npm install @huggingface/tokenizers` outside the repo, found through $HFTOK_DIR
// (default /tmp/hftok), $NODE_PATH, or the usual node_modules lookup.
import { createRequire } from "node:module";
import { readFileSync, existsSync } from "node:fs";
import { basename, join } from "node:path";
import { gunzipSync } from "node:zlib";

const require = createRequire(import.meta.url);
const roots = [process.env.HFTOK_DIR || "/tmp/hftok", process.cwd(),
               ...(process.env.NODE_PATH || "").split(":").filter(Boolean)];
const { Tokenizer } = require(require.resolve("@huggingface/tokenizers", { paths: roots }));

const [dir, ...texts] = process.argv.slice(2);
if (!dir) {
  console.error("usage: node golden_qwen3.mjs TOKENIZER_DIR [TEXT_FILE...]");
  process.exit(2);
}
const tokJson = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
const cfgPath = join(dir, "tokenizer_config.json");
const tokCfg = existsSync(cfgPath) ? JSON.parse(readFileSync(cfgPath, "utf8")) : {};
const tok = new Tokenizer(tokJson, tokCfg);
const encode = (s) => tok.encode(s, { add_special_tokens: false }).ids;

const para =
  "The quick brown fox jumps over the lazy dog. In 1969, Apollo 11 landed on the Moon; " +
  "Neil Armstrong said: \"That's one small step for [a] man, one giant leap for mankind.\" " +
  "Tokenizers split text into pieces -- words, numbers (3.14159, 2,718,281), punctuation!? -- " +
  "and then merge bytes by rank until no merge applies.  Émile Zola's café served crème brûlée.\n";

const strings = [
  // English and punctuation
  "Hello world", "Hello, world! How are you today?", "hello", "HELLO WORLD", " Hello",
  "The quick brown fox jumps over the lazy dog.", "a", "I", "Mr. O'Neil's dog-friendly café.",
  "e.g. i.e. etc... ?!?! --- ***", "\"quoted\" 'single' `back` (paren) [bracket] {brace}",
  // contractions, including upper case and odd ones
  "I'm sure you're right, we'll see; she's done, they've gone, I'd go, don't",
  "I'M SURE YOU'RE RIGHT, WE'LL SEE; SHE'S DONE, THEY'VE GONE, I'D GO, DON'T",
  "It'S wE'Ll 'd 's 'll'", "rock'n'roll ''double''",
  // digits and numbers
  "12345", "3.14159265358979", "1,000,000 and 2024-06-01 at 12:34:56", "0x7fffffff 1e-9 -42",
  "31415926535897932384626433832795028841971693993751058209749445923078164062862089986280348253421170679",
  "version 1.2.3-rc4", "٣٤٥ ١٢", "①②③ ⅷ",
  // whitespace
  " ", "  ", "   ", "\t", "\t\tindent", "a  b   c    d", "trailing spaces   ", "   leading",
  "\n", "\n\n", "\n\n\n", "line1\nline2\n", "line1\r\nline2\r\n", "\r\n\r\n", "\r", "mixed \t \n \r\n end",
  "                                                                      many spaces",
  "tab\there\tand\tthere", "\u00a0nbsp\u2003em-space\u3000ideographic",
  // code
  "int main(void) {\n    printf(\"hello, %s\\n\", argv[1]);\n    return 0;\n}\n",
  "def f(x):\n    if x > 0:\n        return x ** 2\n    else:\n        return -x\n\nprint(f(3))\n",
  "for (size_t i = 0; i < n; i++) a[i] += b[i] * c;",
  "<div class=\"x\">&amp; &lt;tag&gt;</div>", "https://example.com/path?q=1&r=two#frag",
  "SELECT * FROM users WHERE id = 42;", "x => x.map(y => y * 2).filter(Boolean)",
  // non-Latin scripts
  "你好，世界！今天天气很好。", "日本語のテキストです。カタカナとひらがな。",
  "مرحبا بالعالم", "नमस्ते दुनिया", "Привет, мир! Как дела?", "안녕하세요 세계",
  "Ελληνικά κείμενα", "שלום עולם", "ไทย ภาษา", "Tiếng Việt có dấu",
  // emoji and ZWJ sequences
  "😀", "I ❤️ tokenizers 🎉🎉", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "👍🏽 thumbs",
  // NFC: combining characters that compose, and ones that do not
  "e\u0301", "cafe\u0301 na\u0308ive", "A\u030a", "\u1100\u1161\u11a8", "q\u0307\u0323",
  "Å vs A\u030a", "\u212b angstrom sign",
  // special tokens inline, partial and broken ones
  "<|im_start|>user\nhi<|im_end|>", "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
  "<|endoftext|>", "a<|endoftext|>b", "<think>\nreasoning\n</think>\n\nanswer",
  "<tool_call>{\"name\": \"f\"}</tool_call>", "<|im_start", "<|im_end|", "<|not_a_token|>",
  "<|im_start|><|im_start|>", "< |im_start| >",
  // misc
  "", "!", "…", "— – -", "© ® ™ € £ ¥", "∑∫√∞≠≤≥", "\u0000nul\u0001ctl\u007f",
  "\ufeffBOM", "ﬁ ligature", "Ａｂｃ full width",
  para, para.repeat(4),
];

if (texts.length === 0) {
  process.stdout.write("[\n" + strings.map((text) => JSON.stringify({ text, ids: encode(text) }))
    .join(",\n") + "\n]\n");
} else {
  const counts = texts.map((f) => {
    let buf = readFileSync(f);
    if (f.endsWith(".gz")) buf = gunzipSync(buf);
    return { file: basename(f).replace(/\.gz$/, ""), bytes: buf.length,
             count: encode(buf.toString("utf8")).length };
  });
  process.stdout.write(JSON.stringify(counts, null, 1) + "\n");
}
