/* Renders /openapi.json as a page: one block per operation, then the schemas.
 * Text from the document goes in through textContent or SwitchboardMarkdown. */
(function () {
  "use strict";
  var base = document.documentElement.dataset.base || "";
  var md = window.SwitchboardMarkdown.render;
  var main = document.getElementById("doc");

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function json(value) { return el("pre", null, JSON.stringify(value, null, 2)); }

  function content(title, body, parent) {
    if (!body) return;
    parent.appendChild(el("h3", null, title));
    if (body.description) parent.appendChild(md(body.description));
    Object.keys(body.content || {}).forEach(function (type) {
      parent.appendChild(el("div", null, type));
      parent.appendChild(json(body.content[type].schema || {}));
    });
  }

  function operation(doc, path, method, op) {
    var box = el("details", "op");
    box.id = op.operationId || (method + path);
    var summary = el("summary");
    summary.appendChild(el("span", "method " + method, method));
    summary.appendChild(el("span", "path", path));
    summary.appendChild(el("span", "summary", op.summary || ""));
    box.appendChild(summary);
    var inner = el("div", "inner");
    if (op.description) inner.appendChild(md(op.description));
    var params = op.parameters || [];
    if (params.length) {
      inner.appendChild(el("h3", null, "Parameters"));
      var table = el("table");
      params.forEach(function (p) {
        var row = el("tr");
        row.appendChild(el("td", null, p.name));
        row.appendChild(el("td", null, p.in + (p.required ? ", required" : "")));
        row.appendChild(el("td", null, JSON.stringify(p.schema || {})));
        row.appendChild(el("td", null, p.description || ""));
        table.appendChild(row);
      });
      inner.appendChild(table);
    }
    content("Request body", op.requestBody, inner);
    Object.keys(op.responses || {}).forEach(function (status) {
      var response = op.responses[status];
      if (response.$ref) {
        var name = response.$ref.split("/").pop();
        response = (doc.components.responses || {})[name] || response;
      }
      content("Response " + status, response, inner);
    });
    box.appendChild(inner);
    return box;
  }

  fetch(base + "/openapi.json").then(function (r) { return r.json(); }).then(function (doc) {
    main.replaceChildren();
    document.getElementById("title").textContent = doc.info.title + " API " + doc.info.version;
    main.appendChild(md(doc.info.description || ""));
    main.appendChild(el("p", null, "Server: " + doc.servers.map(function (s) { return s.url; }).join(", ")));
    main.appendChild(el("h2", null, "Endpoints"));
    Object.keys(doc.paths).forEach(function (path) {
      var item = doc.paths[path];
      ["get", "post", "put", "patch", "delete"].forEach(function (method) {
        if (item[method]) main.appendChild(operation(doc, path, method, item[method]));
      });
    });
    main.appendChild(el("h2", null, "Schemas"));
    var schemas = (doc.components || {}).schemas || {};
    Object.keys(schemas).forEach(function (name) {
      var box = el("details", "op");
      box.id = "schema-" + name;
      var summary = el("summary");
      summary.appendChild(el("span", "path", name));
      box.appendChild(summary);
      var inner = el("div", "inner");
      inner.appendChild(json(schemas[name]));
      box.appendChild(inner);
      main.appendChild(box);
    });
    document.documentElement.dataset.ready = "true";
  }).catch(function (error) {
    main.replaceChildren(el("p", null, "Could not load the document: " + error));
  });
})();
