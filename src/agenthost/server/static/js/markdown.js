/**
 * Model output to safe DOM: markdown (marked), then sanitised (DOMPurify).
 *
 * Model output is untrusted: a prompt injection can make a model write any
 * HTML. Three layers keep it inert:
 * 1. raw HTML in the markdown is shown as text, never interpreted;
 * 2. DOMPurify keeps only harmless tags and attributes (no script, no event
 *    handlers, no `javascript:` links, no images, media, forms or styles), so
 *    nothing runs and nothing remote loads;
 * 3. the server's Content-Security-Policy forbids inline script and remote
 *    loads, should anything slip past 1 and 2.
 * Links open in a new tab without a referrer or a handle on this page.
 * Code blocks are highlighted when a reply is complete; the highlighter loads
 * on first use.
 */
import { Marked } from "../vendor/marked-18.2.1/marked.esm.js";
import DOMPurify from "../vendor/dompurify-3.4.18/purify.es.mjs";

const HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (char) => HTML_ESCAPES[char]);
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    html({ text }) {
      return escapeHtml(text);
    },
    image({ href, text }) {
      const label = text || href || "image";
      return href ? `<a href="${escapeHtml(href)}">${escapeHtml(label)}</a>` : escapeHtml(label);
    },
  },
});

const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: [
    "style", "img", "picture", "source", "video", "audio", "track", "iframe", "frame",
    "object", "embed", "form", "input", "button", "textarea", "select", "option",
    "svg", "math", "link", "meta", "base", "template", "dialog",
  ],
  FORBID_ATTR: ["style", "src", "srcset", "action", "formaction", "background", "poster"],
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

/** Markdown text to a sanitised DocumentFragment. */
export function renderMarkdown(text) {
  return DOMPurify.sanitize(marked.parse(text, { async: false }), PURIFY);
}

let highlighter = null;

/** Highlight the code blocks under `root` and give each a copy button. */
export async function decorateCode(root, { copy } = {}) {
  const blocks = [...root.querySelectorAll("pre > code")];
  if (blocks.length === 0) return;
  for (const code of blocks) {
    const pre = code.parentElement;
    if (pre.parentElement?.classList.contains("code-block")) continue;
    const wrapper = document.createElement("div");
    wrapper.className = "code-block";
    pre.replaceWith(wrapper);
    wrapper.append(pre);
    if (copy) wrapper.append(copy(() => code.textContent, "Copy code", "code-copy"));
  }
  try {
    highlighter ??= import("./highlight.js");
    const { highlight } = await highlighter;
    blocks.forEach(highlight);
  } catch {
    // highlighting is a nicety: plain code is fine
  }
}
