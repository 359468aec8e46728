/* The playground page: model and protocol pickers, the conversation, and
 * the common render model (Turn) every protocol adapter drives.
 *
 * Model output only ever reaches the page as textContent or through
 * SwitchboardMarkdown.render (which builds nodes the same way): never as HTML.
 * The API key lives in sessionStorage (this tab) and goes only to this server.
 */
(function () {
  "use strict";

  var root = document.documentElement;
  var base = root.dataset.base || "";
  var keysRequired = root.dataset.keysRequired === "true";
  var protocols = window.SwitchboardProtocols;
  var render = window.SwitchboardMarkdown.render;

  function $(id) { return document.getElementById(id); }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var modelSelect = $("model");  // free text: vendor/model ids route without being listed
  var modelList = $("model-list");
  var protocolSelect = $("protocol");
  var keyInput = $("api-key");
  var conversation = $("conversation");
  var frames = $("frames");
  var prompt = $("prompt");
  var sendButton = $("send");
  var stopButton = $("stop");
  var imageInput = $("image");
  var attachments = $("attachments");
  var status = $("status");

  var history = [];      // {role, text, images}
  var pending = [];      // data URLs of images to send with the next message
  var models = {};       // id -> model object of /v1/models
  var running = null;    // the adapter's {done, cancel} while a reply streams
  var counter = 0;

  /* ---- the render model --------------------------------------------- */

  function Turn(model, protocol) {
    this.started = performance.now();
    this.first = null;
    this.textValue = "";
    this.ended = false;
    this.failed = false;
    this.tools = {};
    this.node = el("li", "turn assistant");
    var head = el("div", "who");
    head.appendChild(el("span", "role", "assistant"));
    head.appendChild(el("span", "tag", model));
    head.appendChild(el("span", "tag", protocol));
    this.node.appendChild(head);
    this.reasoningNode = el("details", "reasoning");
    this.reasoningNode.open = true;
    this.reasoningNode.appendChild(el("summary", null, "Reasoning"));
    this.reasoningText = el("div", "reasoning-text");
    this.reasoningNode.appendChild(this.reasoningText);
    this.reasoningNode.hidden = true;
    this.planNode = el("div", "plan");
    this.planNode.hidden = true;
    this.todoNode = el("div", "todo");
    this.todoNode.hidden = true;
    this.toolsNode = el("div", "tools");
    this.body = el("div", "body markdown");
    this.filesNode = el("div", "files");
    this.sourcesNode = el("ol", "sources");
    this.sourcesNode.hidden = true;
    this.errorNode = el("div", "error");
    this.errorNode.hidden = true;
    this.meta = el("div", "meta", "waiting for the first token…");
    [this.reasoningNode, this.planNode, this.todoNode, this.toolsNode, this.body, this.filesNode,
     this.sourcesNode, this.errorNode, this.meta].forEach(function (n) { this.node.appendChild(n); }, this);
    this.steps = [];
    this.usageValue = null;
    this.reason = null;
  }

  // Keep the newest output in view unless the reader scrolled up.
  function follow() {
    if (conversation.scrollHeight - conversation.scrollTop - conversation.clientHeight < 120) {
      requestAnimationFrame(function () { conversation.scrollTop = conversation.scrollHeight; });
    }
  }

  Turn.prototype.mark = function () {
    if (this.first === null) this.first = performance.now();
    this.node.classList.add("streaming");
    follow();
  };

  Turn.prototype.text = function (delta) {
    if (!delta) return;
    this.mark();
    this.textValue += delta;
    var self = this;
    if (!this.frameRequested) { // re-render at most once per animation frame
      this.frameRequested = true;
      requestAnimationFrame(function () {
        self.frameRequested = false;
        self.body.replaceChildren(render(self.textValue));
      });
    }
  };

  Turn.prototype.reasoning = function (delta) {
    if (!delta) return;
    this.mark();
    this.reasoningNode.hidden = false;
    this.reasoningText.textContent += delta;
  };

  function stepList(items, className) {
    var list = el("ol", className);
    items.forEach(function (step) {
      var item = el("li", "step status-" + String(step.status || "pending").replace(/[^a-z_-]/gi, ""));
      item.dataset.id = step.id;
      item.appendChild(el("span", "mark", step.status === "completed" ? "✓" : step.status === "running" ? "▸" : "○"));
      item.appendChild(el("span", "title", step.title || step.id));
      item.appendChild(el("span", "state", step.status || ""));
      list.appendChild(item);
    });
    return list;
  }

  Turn.prototype.drawPlan = function () {
    this.planNode.hidden = false;
    this.planNode.replaceChildren(el("h3", null, "Plan" + (this.taskId ? " · " + this.taskId : "")), stepList(this.steps, "plan-steps"));
  };

  Turn.prototype.plan = function (taskId, steps) {
    this.mark();
    this.taskId = taskId;
    this.steps = steps.slice();
    this.drawPlan();
  };

  Turn.prototype.todo = function (items) {
    this.mark();
    var steps = this.steps;
    items.forEach(function (item) { // todos update the plan's steps by id
      var known = steps.filter(function (s) { return s.id === item.id; })[0];
      if (known) {
        known.status = item.status;
        if (item.title) known.title = item.title;
      } else {
        steps.push({ id: item.id, title: item.title, status: item.status });
      }
    });
    if (steps.length) this.drawPlan();
    var done = items.filter(function (i) { return i.status === "completed"; }).length;
    this.todoNode.hidden = false;
    this.todoNode.replaceChildren(el("h3", null, "Todo · " + done + "/" + items.length + " done"), stepList(items, "todo-items"));
  };

  Turn.prototype.toolStart = function (id, name) {
    this.mark();
    var box = el("details", "tool");
    box.open = true;
    var summary = el("summary");
    summary.appendChild(el("span", null, "Tool call "));
    summary.appendChild(el("code", null, name || "?"));
    summary.appendChild(el("span", "muted", " " + (id || "")));
    var args = el("pre", "arguments");
    box.appendChild(summary);
    box.appendChild(args);
    this.toolsNode.appendChild(box);
    this.tools[id] = { args: args, text: "" };
  };

  Turn.prototype.toolDelta = function (id, delta) {
    var tool = this.tools[id];
    if (!tool) {
      this.toolStart(id, "");
      tool = this.tools[id];
    }
    tool.text += delta;
    tool.args.textContent = tool.text;
  };

  Turn.prototype.toolCall = function (id, name, input) {
    if (!this.tools[id]) this.toolStart(id, name);
    var tool = this.tools[id];
    tool.text = typeof input === "string" ? input : JSON.stringify(input);
    try {
      tool.args.textContent = JSON.stringify(JSON.parse(tool.text), null, 2);
    } catch (e) {
      tool.args.textContent = tool.text;
    }
  };

  Turn.prototype.file = function (mediaType, url) {
    this.mark();
    var safe = window.SwitchboardMarkdown.safeUrl(url, true);
    if (safe && /^image\//.test(mediaType || "image/")) {
      var img = el("img", "generated");
      img.src = safe;
      img.alt = "generated " + (mediaType || "image");
      this.filesNode.appendChild(img);
    } else {
      this.filesNode.appendChild(el("div", "file-ref", (mediaType || "file") + ": " + url));
    }
  };

  Turn.prototype.source = function (url, title) {
    this.sourcesNode.hidden = false;
    var item = el("li");
    var href = window.SwitchboardMarkdown.safeUrl(url, false);
    if (href) {
      var link = el("a", null, title || url);
      link.href = href;
      link.target = "_blank";
      link.rel = "noopener noreferrer nofollow";
      item.appendChild(link);
    } else {
      item.textContent = title || url;
    }
    this.sourcesNode.appendChild(item);
  };

  Turn.prototype.usage = function (usage) {
    this.usageValue = usage;
    this.drawMeta();
  };

  Turn.prototype.finish = function (reason) {
    if (reason) this.reason = reason;
    this.end();
  };

  Turn.prototype.error = function (message) {
    this.failed = true;
    this.errorNode.hidden = false;
    this.errorNode.appendChild(el("div", null, message));
    this.end();
  };

  Turn.prototype.end = function () {
    if (!this.ended) this.total = performance.now() - this.started;
    this.ended = true;
    this.node.classList.remove("streaming");
    this.node.classList.add(this.failed ? "failed" : "done");
    this.body.replaceChildren(render(this.textValue));
    this.drawMeta();
    follow();
  };

  Turn.prototype.drawMeta = function () {
    var parts = [];
    if (this.first !== null) parts.push("first token " + Math.round(this.first - this.started) + " ms");
    if (this.ended) parts.push("total " + Math.round(this.total) + " ms");
    if (this.reason) parts.push("finish " + this.reason);
    var u = this.usageValue;
    if (u) {
      parts.push("tokens in " + u.input + " · out " + u.output + (u.reasoning ? " (reasoning " + u.reasoning + ")" : "") +
                 (u.total !== undefined ? " · total " + u.total : ""));
    }
    this.meta.textContent = parts.join(" · ") || (this.ended ? "no answer" : "");
  };

  /* ---- the raw view ------------------------------------------------- */

  var frameStart = performance.now();
  function frame(kind, text) {
    var item = el("li", "frame kind-" + kind.replace(/[^a-z]/gi, ""));
    var head = el("div", "frame-head");
    head.appendChild(el("time", null, new Date().toISOString().slice(11, 23)));
    head.appendChild(el("span", "offset", "+" + Math.round(performance.now() - frameStart) + " ms"));
    head.appendChild(el("span", "kind", kind));
    item.appendChild(head);
    item.appendChild(el("pre", null, text));
    frames.appendChild(item);
    frames.scrollTop = frames.scrollHeight;
  }

  /* ---- models, protocols, key -------------------------------------- */

  var CAPABILITIES = ["textInput", "imageInput", "textOutput", "imageOutput", "thinking", "internetBrowsing",
                      "fileOutput", "videoInput", "videoOutput"];

  function showBadges() {
    var badges = $("badges");
    badges.replaceChildren();
    var model = models[modelSelect.value.trim()];
    if (!model) {
      if (modelSelect.value.trim()) badges.appendChild(el("span", "badge owner", "not listed"));
      return;
    }
    if (model.preset) badges.appendChild(el("span", "badge preset", "preset"));
    var capabilities = model.capabilities || {};
    CAPABILITIES.forEach(function (name) {
      if (capabilities[name]) badges.appendChild(el("span", "badge", name));
    });
    if (model.owned_by) badges.appendChild(el("span", "badge owner", model.owned_by));
  }

  function headers() {
    var h = {};
    if (keyInput.value) h.Authorization = "Bearer " + keyInput.value;
    return h;
  }

  function loadModels() {
    var chosen = modelSelect.value || sessionStorage.getItem("switchboard.model") || "";
    return fetch(base + "/v1/models", { headers: headers() }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) {
          status.textContent = "Models: HTTP " + response.status + " " + ((body.error && body.error.message) || "");
          return;
        }
        status.textContent = "";
        models = {};
        modelList.replaceChildren();
        (body.data || []).forEach(function (model) {
          models[model.id] = model;
          var option = el("option", null, model.preset ? "preset" : (model.owned_by || ""));
          option.value = model.id;
          modelList.appendChild(option);
        });
        modelSelect.value = chosen || ((body.data || [])[0] || {}).id || "";
        showBadges();
      });
    }).catch(function (error) {
      status.textContent = "Models: " + error;
    });
  }

  /* The protocols this server speaks: adapters whose endpoint its OpenAPI document lists. */
  function loadProtocols() {
    return fetch(base + "/openapi.json").then(function (response) {
      return response.ok ? response.json() : { paths: {} };
    }).catch(function () { return { paths: {} }; }).then(function (document) {
      var paths = document.paths || {};
      protocols = window.SwitchboardProtocols.filter(function (protocol) { return !protocol.path || paths[protocol.path]; });
      protocolSelect.replaceChildren();
      protocols.forEach(function (protocol) {
        var option = el("option", null, protocol.label);
        option.value = protocol.id;
        protocolSelect.appendChild(option);
      });
      protocolSelect.value = sessionStorage.getItem("switchboard.protocol") || protocols[0].id;
      if (!protocolSelect.value) protocolSelect.value = protocols[0].id;
    });
  }

  if (keysRequired) $("key-field").hidden = false;
  keyInput.value = sessionStorage.getItem("switchboard.key") || "";
  keyInput.addEventListener("change", function () {
    sessionStorage.setItem("switchboard.key", keyInput.value);
    loadModels();
  });
  modelSelect.addEventListener("input", showBadges);
  modelSelect.addEventListener("change", function () {
    sessionStorage.setItem("switchboard.model", modelSelect.value.trim());
    showBadges();
  });
  protocolSelect.addEventListener("change", function () {
    sessionStorage.setItem("switchboard.protocol", protocolSelect.value);
  });

  /* ---- composing and sending ---------------------------------------- */

  function drawAttachments() {
    attachments.replaceChildren();
    pending.forEach(function (url, index) {
      var chip = el("span", "attachment");
      var img = el("img");
      img.src = url;
      img.alt = "attachment " + (index + 1);
      var remove = el("button", "remove", "×");
      remove.type = "button";
      remove.title = "remove";
      remove.addEventListener("click", function () {
        pending.splice(index, 1);
        drawAttachments();
      });
      chip.appendChild(img);
      chip.appendChild(remove);
      attachments.appendChild(chip);
    });
  }

  imageInput.addEventListener("change", function () {
    Array.prototype.forEach.call(imageInput.files, function (file) {
      var reader = new FileReader();
      reader.onload = function () {
        pending.push(reader.result);
        drawAttachments();
      };
      reader.readAsDataURL(file);
    });
    imageInput.value = "";
  });

  function userTurn(message) {
    var node = el("li", "turn user");
    var head = el("div", "who");
    head.appendChild(el("span", "role", "you"));
    node.appendChild(head);
    if (message.text) node.appendChild(el("div", "body plain", message.text));
    message.images.forEach(function (url) {
      var img = el("img", "sent");
      img.src = url;
      img.alt = "sent image";
      node.appendChild(img);
    });
    conversation.appendChild(node);
  }

  function protocolById(id) {
    return protocols.filter(function (p) { return p.id === id; })[0] || protocols[0];
  }

  function send() {
    if (running) return;
    var text = prompt.value.trim();
    if (!text && !pending.length) return;
    var message = { role: "user", text: text, images: pending.slice() };
    var protocol = protocolById(protocolSelect.value);
    var model = modelSelect.value.trim();
    history.push(message);
    userTurn(message);
    prompt.value = "";
    pending = [];
    drawAttachments();
    var turn = new Turn(model, protocol.label);
    conversation.appendChild(turn.node);
    turn.node.scrollIntoView({ block: "end" });
    counter += 1;
    frame("request", protocol.id + " · model " + model + " · " + history.length + " message(s)");
    running = protocol.start({
      base: base, apiKey: keyInput.value, model: model, isPreset: !!(models[model] && models[model].preset), history: history.slice(), turn: turn, frame: frame,
      id: "pg-" + Date.now().toString(36) + "-" + counter,
    });
    sendButton.disabled = true;
    stopButton.disabled = false;
    running.done.then(function () {
      if (!turn.ended) turn.end();
      // the answer joins the conversation; a failed turn leaves it as it was
      if (!turn.failed && turn.textValue) history.push({ role: "assistant", text: turn.textValue, images: [] });
      else if (turn.failed) history.pop();
      running = null;
      sendButton.disabled = false;
      stopButton.disabled = true;
      conversation.dataset.turns = String(conversation.children.length);
    });
  }

  $("composer").addEventListener("submit", function (event) {
    event.preventDefault();
    send();
  });
  prompt.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  stopButton.addEventListener("click", function () {
    if (running) running.cancel();
  });
  $("clear").addEventListener("click", function () {
    if (running) running.cancel();
    history = [];
    conversation.replaceChildren();
    frames.replaceChildren();
    frameStart = performance.now();
  });
  $("raw-clear").addEventListener("click", function () {
    frames.replaceChildren();
    frameStart = performance.now();
  });

  Promise.all([loadModels(), loadProtocols()]).then(function () { root.dataset.ready = "true"; });
})();
