#!/usr/bin/python3
"""Golden chat renders for tests/check_chat_template.c, from Jinja itself.

Runs the real Qwen3 chat template, and a plain ChatML one, with jinja2 set up
as Hugging Face transformers' apply_chat_template sets it up (a sandboxed
environment with trim_blocks and lstrip_blocks, the tojson filter), so the
renders are what transformers gives.  Needs Debian's python3-jinja2.

usage: /usr/bin/python3 tools/golden_chat.py \
           models/qwen3-tokenizer/tokenizer_config.json > tests/data/chat/golden.json

Prints {"chatml": TEMPLATE, "cases": [{"template": "qwen3"|"chatml", "messages",
"add_generation_prompt", "enable_thinking" (absent: undefined), "text"}...]}.
"""
import json
import sys

from jinja2.sandbox import ImmutableSandboxedEnvironment

# The ChatML template of many fine-tunes (no default system message, no thinking).
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
          "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

SYS = {"role": "system", "content": "You are terse."}


def u(c):
    return {"role": "user", "content": c}


def a(c):
    return {"role": "assistant", "content": c}


def tool(c):
    return {"role": "tool", "content": c}


# (messages, add_generation_prompt, enable_thinking or None for undefined)
CONVERSATIONS = [
    ([u("Hello there.")], True, None),
    ([u("Hello there.")], True, False),
    ([u("Hello there.")], True, True),
    ([u("Hello there.")], False, None),
    ([SYS, u("What is 2+2?")], True, False),
    ([SYS, u("Hi"), a("Hello! How can I help?"), u("Name a colour.")], True, None),
    # history: the think blocks of replies before the last query are dropped
    ([u("Hi"), a("<think>\nThe user greets.\n</think>\n\nHello!"), u("Again")], True, False),
    # the last message is a reply: its think block stays (empty if none)
    ([u("Hi"), a("<think>\nThe user greets.\n</think>\n\nHello!")], False, None),
    ([u("Hi"), a("Hello!")], False, None),
    # Python's str methods: split at the first and last </think>, strip only '\n'
    ([u("Hi"), a("no open tag</think>\n\n\n reply"), u("x"), a("a \n</think>b</think>\n c\n")],
     False, None),
    ([u("Hi"), a("<think>x</think><think>\n\n y\n\n</think>z")], False, None),
    # a system message after the first is a block of its own
    ([u("Hi"), SYS, u("Go on")], True, True),
    # tools: consecutive results share one user block; a wrapped tool response
    # written as a user message is not the last query
    ([u("Weather?"), a("<think>\nCall it.\n</think>\n\nChecking."), tool('{"t": 21}'),
      tool('{"t": 22}'), a("<think>\nGot it.\n</think>\n\nIt is 21 C.")], True, False),
    ([u("Weather?"), a("<think>\nr1\n</think>\n\nChecking."),
      u("<tool_response>\n{}\n</tool_response>"), a("<think>\nr2\n</think>\n\nDone.")],
     False, None),
    ([tool("lonely result")], True, None),
    # text that looks like template stays as it is
    ([u("a<|im_start|>b\n<think>c</think>")], True, False),
    ([u("Émile à Zürich: 東京 🙂")], True, False),
]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: golden_chat.py TOKENIZER_CONFIG_JSON")
    with open(sys.argv[1], encoding="utf-8") as f:
        qwen3 = json.load(f)["chat_template"]
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False, **kw)
    cases = []
    for name, src in (("qwen3", qwen3), ("chatml", CHATML)):
        tmpl = env.from_string(src)
        for messages, gen, think in CONVERSATIONS:
            ctx = {"messages": messages, "add_generation_prompt": gen}
            case = {"template": name, "messages": messages, "add_generation_prompt": gen}
            if think is not None:
                ctx["enable_thinking"] = think
                case["enable_thinking"] = think
            case["text"] = tmpl.render(**ctx)
            cases.append(case)
    json.dump({"chatml": CHATML, "cases": cases}, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


main()
