"""Writes the chat-template fixtures of Qwen3 and Mistral-7B-Instruct-v0.3 with transformers.

The templates in src/test/resources/chat-templates/templates/ are the real ones, byte for byte
(qwen3.jinja: Qwen3's release template, as Qwen/Qwen3-8B's tokenizer_config.json carried it;
mistral-v0.3.jinja: Mistral-7B-Instruct-v0.3's; both taken from huggingface/optimum-intel's
optimum/exporters/openvino/utils.py COMPLEX_CHAT_TEMPLATES, which keys real templates verbatim).
Each is stored with a small tokenizer of the same family (the qwen2.5 / mistral fixtures'
tokenizer.json) and rendered and tokenized by apply_chat_template; the outputs go to
expected.json in the layout of the other fixtures (see ChatTemplateTest).

Run: HF_HUB_OFFLINE=1 /work/ci-check/.venv-interop/bin/python scripts/make_chat_fixtures.py
"""

import json
import os
import shutil
import sys

import transformers
from transformers import AutoTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "test", "resources",
                    "chat-templates")
TEMPLATES = os.path.join(ROOT, "templates")

TOOL_ARGS = {"city": "Paris", "unit": "celsius", "days": 2}

QWEN3_CASES = [
    [{"role": "user", "content": "hi what is 2+2?"},
     {"role": "assistant", "content": "4"}],
    [{"role": "system", "content": "You are terse."},
     {"role": "user", "content": "first question"},
     {"role": "assistant", "content": "<think>\nlet me think\n</think>\n\nfirst answer"},
     {"role": "user", "content": "second question \u6771\u4eac"},
     {"role": "assistant", "content": "<think>\n\nmore thought\n\n</think>\n\n\nsecond answer caf\u00e9"}],
    [{"role": "user", "content": "why?"},
     {"role": "assistant", "content": "because", "reasoning_content": "\nthe reason\n"},
     {"role": "user", "content": "  and then  "},
     {"role": "assistant", "content": "\n\nso it goes", "reasoning_content": "step one\nstep two"}],
    [{"role": "system", "content": "Use tools."},
     {"role": "user", "content": "weather in Paris?"},
     {"role": "assistant", "content": "",
      "tool_calls": [{"type": "function",
                      "function": {"name": "get_weather", "arguments": TOOL_ARGS}}]},
     {"role": "tool", "content": "{\"temp\": 21}"},
     {"role": "tool", "content": "sunny"},
     {"role": "assistant", "content": "<think>ok</think>It is 21 and sunny."}],
    [{"role": "user", "content": "q1"},
     {"role": "assistant", "content": "a1 </think> tail"},
     {"role": "user", "content": "<tool_response>\nx\n</tool_response>"},
     {"role": "assistant", "content": "<think>r</think>\n\na2"}],
]

MISTRAL_CASES = [
    [{"role": "user", "content": "hi what is 2+2?"},
     {"role": "assistant", "content": "  4  "}],
    [{"role": "system", "content": "You are terse."},
     {"role": "user", "content": "first question"},
     {"role": "assistant", "content": "first answer"},
     {"role": "user", "content": "second question \u6771\u4eac"},
     {"role": "assistant", "content": "second answer caf\u00e9\n"}],
    [{"role": "user", "content": "weather in Paris?"},
     {"role": "assistant", "content": "",
      "tool_calls": [{"id": "abcDEF123", "type": "function",
                      "function": {"name": "get_weather", "arguments": TOOL_ARGS}}]},
     {"role": "tool", "content": "21 and sunny", "tool_call_id": "abcDEF123"},
     {"role": "assistant", "content": "It is 21 and sunny."}],
]

MISTRAL_RAISES = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]


def ids_of(out):
    if isinstance(out, dict) or hasattr(out, "keys"):
        out = out["input_ids"]
    return [int(i) for i in out]


def make(name, template_file, tokenizer_from, store, cases, raises):
    out = os.path.join(ROOT, name)
    os.makedirs(out, exist_ok=True)
    shutil.copy(os.path.join(ROOT, tokenizer_from, "tokenizer.json"), out)
    with open(os.path.join(ROOT, tokenizer_from, "tokenizer_config.json")) as f:
        config = json.load(f)
    with open(os.path.join(TEMPLATES, template_file), encoding="utf-8") as f:
        template = f.read()
    config.pop("chat_template", None)
    jinja = os.path.join(out, "chat_template.jinja")
    if store == "file":
        with open(jinja, "w", encoding="utf-8", newline="") as f:
            f.write(template)
    else:
        if os.path.exists(jinja):
            os.remove(jinja)
        config["chat_template"] = template
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template == template, "the tokenizer does not carry the template verbatim"
    expected_cases = []
    for msgs in cases:
        text = tok.apply_chat_template(msgs, tokenize=False)
        ids = ids_of(tok.apply_chat_template(msgs, tokenize=True))
        assert ids == tok.encode(text, add_special_tokens=False)
        head = msgs[:-1]
        gen = tok.apply_chat_template(head, tokenize=False, add_generation_prompt=True)
        gen_ids = ids_of(tok.apply_chat_template(head, tokenize=True, add_generation_prompt=True))
        expected_cases.append({"messages": msgs, "text": text, "ids": ids,
                               "generation_prompt_text": gen, "generation_prompt_ids": gen_ids})
    if raises is not None:
        try:
            tok.apply_chat_template(raises, tokenize=False)
            raise SystemExit(name + ": the raising conversation did not raise")
        except Exception as e:  # jinja2's TemplateError
            if "TemplateError" not in type(e).__name__:
                raise
    special = {k: v for k, v in tok.special_tokens_map.items() if isinstance(v, str)}
    expected = {
        "template_file": template_file,
        "template_stored_in": store,
        "special_tokens": special,
        "variables": {},
        "cases": expected_cases,
        "raises": raises,
        "transformers": transformers.__version__,
    }
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(name, len(expected_cases), "cases")


# Python's str methods and slices as transformers' Jinja2 environment renders them (JinjaPythonTest)
PY_EXPRESSIONS = [
 "{{ s.startswith('  He') }}|{{ s.startswith(('x', ' ')) }}|{{ s.endswith('\\n') }}|{{ s.startswith('He', 2) }}",
 "[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ s.strip(' \\n') }}][{{ s.lstrip(' H') }}][{{ s.rstrip('\\nd') }}]",
 "{{ s.split() | join('|') }};{{ s.split(' ') | join('|') }};{{ s.split('l', 1) | join('|') }};{{ 'a,,b'.split(',') | join('|') }}",
 "{{ s.rsplit('l', 1) | join('|') }};{{ s.rsplit(None, 1) | join('|') }};{{ 'a\\nb\\r\\nc'.splitlines() | join('|') }}",
 "{{ s.upper() }}{{ s.lower() }}{{ 'hello wORLD x2y'.title() }}{{ 'hELLO'.capitalize() }}",
 "{{ s.replace('l', 'L') }}{{ s.replace('l', 'L', 2) }}{{ 'ab'.replace('', '-') }}",
 "{{ s.find('o') }} {{ s.rfind('o') }} {{ s.find('zz') }} {{ s.count('l') }} {{ '-'.join(['a', 'b', 'c']) }}",
 "{{ s[2:7] }}|{{ s[::-1] }}|{{ s[-3:] }}|{{ s[::2] }}|{{ s[-1] }}|{{ s[100:] }}|{{ s[5:1:-1] }}",
 "{{ xs[1:] | join(',') }}|{{ xs[::-1] | join(',') }}|{{ xs[:-1] | join(',') }}|{{ xs[-2:] | join(',') }}|{{ xs[1::2] | join(',') }}|{{ xs[-100:2] | join(',') }}",
 "{{ w.split() | join('|') }}|{{ '12'.isdigit() }}{{ 'ab'.isalpha() }}{{ ' '.isspace() }}{{ 'AB'.isupper() }}{{ 'ab'.islower() }}",
 "{% set ns = namespace(n=xs|length - 1, t=true) %}{{ ns.n }}{% for x in xs[::-1] %}{{ loop.index0 }}{{ x }}{% endfor %}",
 "{{ not u is defined }}{{ not s is string }}{{ not xs[0] is number }}",
 "{{ 'prefix-x'.removeprefix('prefix-') }}{{ 'x.txt'.removesuffix('.txt') }}",
]
PY_CONTEXT = {"s": "  Hello world\n", "xs": [1, 2, 3, 4, 5], "w": "x\u00a0y\u2007z\u3000"}


def make_python_methods():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    cases = [{"template": e, "output": env.from_string(e).render(**PY_CONTEXT)}
             for e in PY_EXPRESSIONS]
    with open(os.path.join(ROOT, "python-methods.json"), "w", encoding="utf-8") as f:
        json.dump({"context": PY_CONTEXT, "cases": cases}, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    make("qwen3", "qwen3.jinja", "qwen2.5", "config", QWEN3_CASES, None)
    make("mistral-v0.3", "mistral-v0.3.jinja", "mistral", "file", MISTRAL_CASES, MISTRAL_RAISES)
    make_python_methods()
    sys.exit(0)
