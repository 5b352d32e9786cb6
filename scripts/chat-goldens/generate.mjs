#!/usr/bin/env node
// Regenerates tests/data/chat_render_golden.json: golden renderings of the Gemma 4 chat template
// embedded in ggml-vocab-gemma-4.gguf (metadata key tokenizer.chat_template).
//
//   node generate.mjs [path/to/ggml-vocab-gemma-4.gguf]
//
// GGUF path: the argument, else $HEARTH_TESTDATA/vocab/ggml-vocab-gemma-4.gguf, else
// ../../../shared/testdata/vocab/ggml-vocab-gemma-4.gguf relative to this script.
//
// Each request (OpenAI chat-completions style, cases.mjs) is first normalised (normalise() below,
// the same contract hearth's C++ renderer implements), then rendered by the reference Jinja
// implementation, Python's Jinja2, in the environment transformers' apply_chat_template uses
// (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks). @huggingface/jinja was tried first
// but cannot render this template (no `map('<filter>')`, renders None as "" where Jinja2 gives "None").
// $PYTHON picks the interpreter (default python3); it needs the jinja2 module.

import { mkdirSync, writeFileSync, openSync, readSync, closeSync } from "node:fs";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { dirname, resolve, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CASES } from "./cases.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "../..");
const OUT_PATH = resolve(REPO, "tests/data/chat_render_golden.json");
const GGUF_REL = "vocab/ggml-vocab-gemma-4.gguf";

// ---------------------------------------------------------------------------------------------
// GGUF: read one string metadata value (v2/v3, little-endian).

function readGgufString(path, wantedKey) {
  const fd = openSync(path, "r");
  let pos = 0;
  const read = (n) => {
    const buf = Buffer.alloc(n);
    let got = 0;
    while (got < n) {
      const r = readSync(fd, buf, got, n - got, pos + got);
      if (r === 0) throw new Error(`${path}: unexpected end of file at offset ${pos + got}`);
      got += r;
    }
    pos += n;
    return buf;
  };
  const u32 = () => read(4).readUInt32LE(0);
  const u64 = () => {
    const v = read(8).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${path}: length ${v} too large`);
    return Number(v);
  };
  const str = () => read(u64());
  const skip = (n) => { pos += n; };
  const SIZES = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skipValue = (type) => {
    if (type in SIZES) return skip(SIZES[type]);
    if (type === 8) return skip(u64());
    if (type === 9) {
      const elemType = u32();
      const count = u64();
      if (elemType in SIZES) return skip(SIZES[elemType] * count);
      for (let i = 0; i < count; i++) skipValue(elemType);
      return;
    }
    throw new Error(`${path}: unknown GGUF value type ${type}`);
  };
  try {
    if (read(4).toString("latin1") !== "GGUF") throw new Error(`${path}: not a GGUF file`);
    const version = u32();
    if (version !== 2 && version !== 3) throw new Error(`${path}: unsupported GGUF version ${version}`);
    u64(); // n_tensors
    const nKv = u64();
    for (let i = 0; i < nKv; i++) {
      const key = str().toString("utf8");
      const type = u32();
      if (key === wantedKey) {
        if (type !== 8) throw new Error(`${path}: ${key} has type ${type}, expected string`);
        return str().toString("utf8");
      }
      skipValue(type);
    }
    throw new Error(`${path}: no metadata key ${wantedKey}`);
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// Normalisation (the contract shared with src/chat/). Input: OpenAI-style messages; output: the
// messages the release-time template understands. Never reorders; returns new objects.

const clone = (x) => (x === undefined ? undefined : JSON.parse(JSON.stringify(x)));

// Text of a content value: a string as is, an array's text parts concatenated, otherwise "".
function contentText(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.filter((p) => p && p.type === "text").map((p) => p.text ?? "").join("");
  }
  return "";
}

// Rule 3: array parts -> {type:"text",text} / {type:"image"} / {type:"audio"}; other parts as they are.
function normaliseContent(content) {
  if (content === null) return null;
  if (!Array.isArray(content)) return content;
  return content.map((p) => {
    if (p && p.type === "text") return { type: "text", text: p.text ?? "" };
    if (p && (p.type === "image_url" || p.type === "image")) return { type: "image" };
    if (p && (p.type === "input_audio" || p.type === "audio")) return { type: "audio" };
    return clone(p);
  });
}

function tryParseJson(text) {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

const isPlainObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const hasToolCalls = (m) => Array.isArray(m.tool_calls) && m.tool_calls.length > 0;

export function normalise(input) {
  // Rules 1 and 3 (and 4 on assistant tool calls), message by message.
  const msgs = input.map((m) => {
    const out = clone(m);
    if (out.role === "developer") out.role = "system";
    if (m.content !== undefined) out.content = normaliseContent(m.content);
    if (Array.isArray(out.tool_calls)) {
      for (const call of out.tool_calls) {
        const fn = call && call.function;
        if (fn && typeof fn.arguments === "string") {
          const parsed = tryParseJson(fn.arguments);
          if (parsed.ok && isPlainObject(parsed.value)) fn.arguments = parsed.value;
        }
      }
    }
    return out;
  });

  // Rule 2: merge the leading system messages into one.
  let lead = 0;
  while (lead < msgs.length && msgs[lead].role === "system") lead++;
  const result = [];
  if (lead > 0) {
    const text = msgs.slice(0, lead).map((m) => contentText(m.content).trim()).join("\n\n");
    result.push({ role: "system", content: text });
  }

  // Rules 5 and 6: fold runs of tool messages into the assistant message before them.
  for (let i = lead; i < msgs.length; ) {
    if (msgs[i].role !== "tool") {
      result.push(msgs[i]);
      i++;
      continue;
    }
    let end = i;
    while (end < msgs.length && msgs[end].role === "tool") end++;
    let holder = result.length > 0 ? result[result.length - 1] : undefined;
    if (!(holder && holder.role === "assistant" && hasToolCalls(holder))) {
      holder = { role: "assistant", content: null };
      result.push(holder);
    }
    const calls = Array.isArray(holder.tool_calls) ? holder.tool_calls : [];
    const responses = [];
    for (let k = i; k < end; k++) {
      const t = input[k]; // original message: its content before part rewriting
      const byId =
        t.tool_call_id !== undefined && t.tool_call_id !== null
          ? calls.find((c) => c && c.id === t.tool_call_id)
          : undefined;
      let name;
      if (byId && byId.function && typeof byId.function.name === "string") name = byId.function.name;
      else if (typeof t.name === "string" && t.name !== "") name = t.name;
      else if (calls[k - i] && calls[k - i].function && typeof calls[k - i].function.name === "string")
        name = calls[k - i].function.name;
      else name = "unknown";
      const text = contentText(t.content);
      const parsed = tryParseJson(text);
      responses.push({ name, response: parsed.ok ? parsed.value : text });
    }
    holder.tool_responses = responses;
    i = end;
    if (i < msgs.length && msgs[i].role === "assistant" && !hasToolCalls(msgs[i])) {
      holder.content = msgs[i].content;
      i++;
    }
  }
  return result;
}

// Deterministic structural comparison (key order ignored).
function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (isPlainObject(v)) {
    return `{${Object.keys(v).sort().filter((k) => v[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
  }
  return JSON.stringify(v === undefined ? null : v);
}

// ---------------------------------------------------------------------------------------------
// Rendering with Jinja2 (one Python process for all cases; JSON in on stdin, JSON out on stdout).

const PY_RENDER = String.raw`
import json, sys
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.ext import loopcontrols

def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

job = json.load(sys.stdin)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
template = env.from_string(job["template"])
out = []
for ctx in job["contexts"]:
    try:
        out.append({"ok": True, "text": template.render(**ctx)})
    except Exception as e:
        out.append({"ok": False, "error": type(e).__name__ + ": " + str(e)})
json.dump({"jinja2": jinja2.__version__, "results": out}, sys.stdout)
`;

function renderAll(template, contexts) {
  const python = process.env.PYTHON || "python3";
  const stdout = execFileSync(python, ["-c", PY_RENDER], {
    input: JSON.stringify({ template, contexts }),
    maxBuffer: 256 * 1024 * 1024,
    encoding: "utf8",
  });
  return JSON.parse(stdout);
}

// ---------------------------------------------------------------------------------------------

function main() {
  const ggufPath = process.argv[2]
    ? resolve(process.argv[2])
    : process.env.HEARTH_TESTDATA
      ? resolve(process.env.HEARTH_TESTDATA, GGUF_REL)
      : resolve(HERE, "../../../shared/testdata", GGUF_REL);
  const template = readGgufString(ggufPath, "tokenizer.chat_template");
  const sha = createHash("sha256").update(Buffer.from(template, "utf8")).digest("hex");

  const names = new Set();
  const prepared = CASES.map((c) => {
    if (names.has(c.name)) throw new Error(`duplicate case name ${c.name}`);
    names.add(c.name);
    const messages = normalise(c.request.messages);
    const ctx = { messages, bos_token: "<bos>", add_generation_prompt: true };
    if (c.request.tools !== undefined) ctx.tools = clone(c.request.tools);
    if (c.request.think !== undefined) ctx.enable_thinking = !!c.request.think;
    return { c, ctx, normalised: canonical(messages) !== canonical(c.request.messages) };
  });

  const { jinja2: jinjaVersion, results } = renderAll(template, prepared.map((p) => p.ctx));
  const cases = prepared.map(({ c, normalised }, i) => {
    const r = results[i];
    if (!r.ok) throw new Error(`case ${c.name}: template error: ${r.error}`);
    if (!r.text.startsWith("<bos>")) throw new Error(`case ${c.name}: rendering does not start with <bos>`);
    return { name: c.name, request: c.request, expected: r.text, normalised };
  });

  const doc = {
    template_sha256: sha,
    generator: relative(REPO, fileURLToPath(import.meta.url)).split("\\").join("/"),
    renderer: `Python Jinja2 ${jinjaVersion} (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks)`,
    cases,
  };
  mkdirSync(dirname(OUT_PATH), { recursive: true });
  writeFileSync(OUT_PATH, JSON.stringify(doc, null, 2) + "\n");
  process.stderr.write(
    `wrote ${relative(process.cwd(), OUT_PATH)}: ${cases.length} cases ` +
      `(${cases.filter((c) => c.normalised).length} normalised), template sha256 ${sha}, Jinja2 ${jinjaVersion}\n`,
  );
}

// Run only when executed directly (normalise() can be imported).
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();
