/**
 * Code highlighting: highlight.js core and the languages models write most.
 * Loaded on first use (see markdown.js), so the page starts without it.
 * highlight.js escapes the code it highlights; it never interprets it.
 */
import hljs from "../vendor/highlight.js-11.12.0/core.min.js";
import bash from "../vendor/highlight.js-11.12.0/languages/bash.min.js";
import c from "../vendor/highlight.js-11.12.0/languages/c.min.js";
import cpp from "../vendor/highlight.js-11.12.0/languages/cpp.min.js";
import css from "../vendor/highlight.js-11.12.0/languages/css.min.js";
import diff from "../vendor/highlight.js-11.12.0/languages/diff.min.js";
import go from "../vendor/highlight.js-11.12.0/languages/go.min.js";
import java from "../vendor/highlight.js-11.12.0/languages/java.min.js";
import javascript from "../vendor/highlight.js-11.12.0/languages/javascript.min.js";
import json from "../vendor/highlight.js-11.12.0/languages/json.min.js";
import python from "../vendor/highlight.js-11.12.0/languages/python.min.js";
import rust from "../vendor/highlight.js-11.12.0/languages/rust.min.js";
import sql from "../vendor/highlight.js-11.12.0/languages/sql.min.js";
import typescript from "../vendor/highlight.js-11.12.0/languages/typescript.min.js";
import xml from "../vendor/highlight.js-11.12.0/languages/xml.min.js";
import yaml from "../vendor/highlight.js-11.12.0/languages/yaml.min.js";

const LANGUAGES = {
  bash, c, cpp, css, diff, go, java, javascript, json, python, rust, sql, typescript, xml, yaml,
};
for (const [name, language] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, language);
hljs.configure({ ignoreUnescapedHTML: true });

/** Highlight one `<code>` element: its named language, or a guess when it names none. */
export function highlight(code) {
  const named = [...code.classList].find((name) => name.startsWith("language-"));
  const language = named?.slice("language-".length);
  if (language && !hljs.getLanguage(language)) return;
  if (code.dataset.highlighted) return;
  hljs.highlightElement(code);
}
