/* A small Markdown renderer for model output.
 *
 * Model text is untrusted: it is never parsed as HTML. Every piece of it
 * reaches the page through document.createElement + textContent, so a reply
 * containing <script> or <img onerror=...> shows those characters as text.
 * Links and images keep only http(s) URLs (and data: URLs of raster images);
 * anything else stays visible as the text it was.
 *
 * Covers what chat models write: paragraphs, headings, fenced code, lists,
 * block quotes, rules, `code`, **bold**, *italic*, ~~strike~~, links, images
 * and bare URLs. Unclosed fences (a reply still streaming) render as code.
 */
(function () {
  "use strict";

  var RASTER_DATA_URL = /^data:image\/(png|jpe?g|gif|webp|avif|bmp);base64,[a-z0-9+\/=\s]+$/i;

  function safeUrl(raw, forImage) {
    var text = String(raw || "").trim();
    if (forImage && RASTER_DATA_URL.test(text)) return text;
    var url;
    try {
      url = new URL(text, document.baseURI);
    } catch (e) {
      return null;
    }
    if (url.protocol === "http:" || url.protocol === "https:") return url.href;
    if (!forImage && url.protocol === "mailto:") return url.href;
    return null;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // One alternation; the first group that matched says which construct it is.
  var INLINE = new RegExp([
    "(`+)([^`]|[^`][\\s\\S]*?[^`])\\1(?!`)",                         // 1,2 code span
    "!\\[([^\\]]*)\\]\\(\\s*<?([^\\s)>]+)>?(?:\\s+\"[^\"]*\")?\\s*\\)", // 3,4 image
    "\\[([^\\]]+)\\]\\(\\s*<?([^\\s)>]+)>?(?:\\s+\"[^\"]*\")?\\s*\\)",  // 5,6 link
    "\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*",                               // 7 strong
    "__(?=\\S)([\\s\\S]*?\\S)__",                                       // 8 strong
    "\\*(?=[^\\s*])([^*]*?[^\\s*])\\*",                                 // 9 em
    "(?:^|(?<=[\\s(]))_(?=[^\\s_])([^_]*?[^\\s_])_(?![A-Za-z0-9])",    // 10 em
    "~~(?=\\S)([\\s\\S]*?\\S)~~",                                       // 11 strike
    "(https?:\\/\\/[^\\s<>\"]*[^\\s<>\".,;:!?')\\]])",                  // 12 bare URL
  ].join("|"));

  function inline(text, parent) {
    var rest = text;
    while (rest) {
      var m = INLINE.exec(rest);
      if (!m) {
        parent.appendChild(document.createTextNode(rest));
        return;
      }
      if (m.index > 0) parent.appendChild(document.createTextNode(rest.slice(0, m.index)));
      var node = null;
      if (m[1] !== undefined) {
        node = el("code", null, m[2].replace(/^ (.*) $/, "$1"));
      } else if (m[4] !== undefined) {
        var src = safeUrl(m[4], true);
        if (src) {
          node = el("img", "md-image");
          node.alt = m[3];
          node.src = src;
          node.loading = "lazy";
          node.referrerPolicy = "no-referrer";
        }
      } else if (m[6] !== undefined) {
        var href = safeUrl(m[6], false);
        if (href) {
          node = el("a");
          node.href = href;
          node.target = "_blank";
          node.rel = "noopener noreferrer nofollow";
          inline(m[5], node);
        }
      } else if (m[7] !== undefined || m[8] !== undefined) {
        node = el("strong");
        inline(m[7] !== undefined ? m[7] : m[8], node);
      } else if (m[9] !== undefined || m[10] !== undefined) {
        node = el("em");
        inline(m[9] !== undefined ? m[9] : m[10], node);
      } else if (m[11] !== undefined) {
        node = el("del");
        inline(m[11], node);
      } else if (m[12] !== undefined) {
        var bare = safeUrl(m[12], false);
        if (bare) {
          node = el("a", null, m[12]);
          node.href = bare;
          node.target = "_blank";
          node.rel = "noopener noreferrer nofollow";
        }
      }
      // A construct with an unsafe URL stays as the text it was.
      parent.appendChild(node || document.createTextNode(m[0]));
      rest = rest.slice(m.index + m[0].length);
    }
  }

  function inlineLines(lines, parent) {
    lines.forEach(function (line, i) {
      if (i > 0) parent.appendChild(el("br"));
      inline(line, parent);
    });
  }

  var FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
  var HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  var RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
  var QUOTE = /^ {0,3}>\s?(.*)$/;
  var ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;

  function blocks(lines, parent) {
    var i = 0;
    while (i < lines.length) {
      var line = lines[i];
      var m;
      if (!line.trim()) {
        i++;
      } else if ((m = FENCE.exec(line))) {
        var fence = m[1];
        var code = [];
        i++;
        while (i < lines.length && !(lines[i].trim().indexOf(fence) === 0 && /^\s*[`~]+\s*$/.test(lines[i]))) {
          code.push(lines[i]);
          i++;
        }
        i++; // the closing fence (absent while still streaming)
        var pre = el("pre");
        var codeNode = el("code", null, code.join("\n"));
        if (m[2]) codeNode.dataset.language = m[2];
        pre.appendChild(codeNode);
        parent.appendChild(pre);
      } else if ((m = HEADING.exec(line))) {
        var heading = el("h" + Math.min(6, m[1].length + 2));
        inline(m[2], heading);
        parent.appendChild(heading);
        i++;
      } else if (RULE.test(line)) {
        parent.appendChild(el("hr"));
        i++;
      } else if (QUOTE.test(line)) {
        var quoted = [];
        while (i < lines.length && (m = QUOTE.exec(lines[i]))) {
          quoted.push(m[1]);
          i++;
        }
        var quote = el("blockquote");
        blocks(quoted, quote);
        parent.appendChild(quote);
      } else if ((m = ITEM.exec(line))) {
        var ordered = /\d/.test(m[2]);
        var list = el(ordered ? "ol" : "ul");
        if (ordered && parseInt(m[2], 10) !== 1) list.start = parseInt(m[2], 10);
        var indent = m[1].length;
        while (i < lines.length && (m = ITEM.exec(lines[i])) && m[1].length <= indent + 1 && /\d/.test(m[2]) === ordered) {
          var body = [m[3]];
          i++;
          // continuation lines: indented deeper than the marker (nested lists included)
          while (i < lines.length && lines[i].trim() && /^\s+/.test(lines[i]) && lines[i].search(/\S/) > indent) {
            body.push(lines[i].slice(Math.min(lines[i].search(/\S/), indent + 2)));
            i++;
          }
          var item = el("li");
          if (body.length === 1) inline(body[0], item);
          else blocks(body, item);
          list.appendChild(item);
        }
        parent.appendChild(list);
      } else {
        var paragraph = [];
        while (i < lines.length && lines[i].trim() && !FENCE.test(lines[i]) && !HEADING.test(lines[i]) &&
               !QUOTE.test(lines[i]) && !(paragraph.length && ITEM.test(lines[i])) && !RULE.test(lines[i])) {
          paragraph.push(lines[i]);
          i++;
        }
        if (!paragraph.length) { // a line only the list rule refused: keep it as text
          paragraph.push(lines[i]);
          i++;
        }
        var p = el("p");
        inlineLines(paragraph, p);
        parent.appendChild(p);
      }
    }
  }

  /* Markdown text -> a DocumentFragment of safe nodes. */
  function render(text) {
    var fragment = document.createDocumentFragment();
    blocks(String(text || "").replace(/\r\n?/g, "\n").split("\n"), fragment);
    return fragment;
  }

  window.SwitchboardMarkdown = { render: render, safeUrl: safeUrl };
})();
