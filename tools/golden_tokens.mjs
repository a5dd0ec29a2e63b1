// Golden token ids from an independent tokenizer (Hugging Face's pure-JS tokenizers.js).
//
// usage: node tools/golden_tokens.mjs TOKENIZER_JSON STRINGS_JSON
//   STRINGS_JSON is a JSON array of strings; prints a JSON array of id arrays (one per
//   string), special tokens written inline are matched whole, no BOS/EOS added.
// Needs `npm install @huggingface/tokenizers` somewhere outside the repo, found through
// $HFTOK_DIR (default /tmp/hftok), $NODE_PATH, or the usual node_modules lookup.
import { createRequire } from "node:module";
import { readFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);
const roots = [process.env.HFTOK_DIR || "/tmp/hftok", process.cwd(),
               ...(process.env.NODE_PATH || "").split(":").filter(Boolean)];
const { Tokenizer } = require(require.resolve("@huggingface/tokenizers", { paths: roots }));

const [tokPath, stringsPath] = process.argv.slice(2);
if (!tokPath || !stringsPath) {
  console.error("usage: node golden_tokens.mjs TOKENIZER_JSON STRINGS_JSON");
  process.exit(2);
}
const tokJson = JSON.parse(readFileSync(tokPath, "utf8"));
const cfgPath = join(dirname(tokPath), "tokenizer_config.json");
const tokCfg = existsSync(cfgPath) ? JSON.parse(readFileSync(cfgPath, "utf8")) : {};
const tok = new Tokenizer(tokJson, tokCfg);
const strings = JSON.parse(readFileSync(stringsPath, "utf8"));
const out = strings.map((s) => tok.encode(s, { add_special_tokens: false }).ids);
console.log(JSON.stringify(out));
