/* The playground's protocols: one small adapter object per client protocol.
 *
 * An adapter turns the conversation into its request, and each frame of the
 * answer into calls on the common render model (`turn`, see app.js):
 *   turn.text(delta)  turn.reasoning(delta)  turn.plan(currentTaskId, steps)
 *   turn.todo(items)  turn.toolStart(id, name)  turn.toolDelta(id, delta)
 *   turn.toolCall(id, name, input)  turn.file(mediaType, url)
 *   turn.source(url, title)  turn.usage({input, output, total, ...})
 *   turn.finish(reason)  turn.error(message)
 * and reports every frame exactly as it arrived with ctx.frame(kind, text).
 *
 * ctx: {base, apiKey, model, isPreset, history, turn, frame, id}. history items are
 * {role: "user"|"assistant", text, images: [data URL]}.
 * start(ctx) returns {done: Promise, cancel()}; done resolves when the
 * stream ended (a clean end, an error, or a cancel).
 *
 * Adding a protocol = one object pushed onto window.SwitchboardProtocols.
 */
(function () {
  "use strict";

  function authHeaders(ctx) {
    var headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
    if (ctx.apiKey) headers.Authorization = "Bearer " + ctx.apiKey;
    return headers;
  }

  // The OpenAI-style message list most surfaces accept (text, image_url parts).
  function openaiMessages(history) {
    return history.map(function (message) {
      if (!message.images || !message.images.length) return { role: message.role, content: message.text };
      var parts = [];
      if (message.text) parts.push({ type: "text", text: message.text });
      message.images.forEach(function (url) {
        parts.push({ type: "image_url", image_url: { url: url } });
      });
      return { role: message.role, content: parts };
    });
  }

  /* A non-2xx answer: its status and whatever message its body carries. */
  function httpError(response, ctx) {
    return response.text().then(function (body) {
      ctx.frame("http", "HTTP " + response.status + " " + response.statusText + "\n" + body);
      var message = body;
      try {
        var parsed = JSON.parse(body);
        var error = parsed.error !== undefined ? parsed.error : parsed;
        message = typeof error === "string" ? error : (error.message || JSON.stringify(error));
      } catch (e) { /* not JSON: show the body as it is */ }
      ctx.turn.error("HTTP " + response.status + ": " + (message || response.statusText));
    });
  }

  /* POST, then read the body as SSE: onEvent({event, data, raw}) per event;
   * comments (heartbeats) are shown in the raw view only. */
  function streamSSE(ctx, url, body, onEvent) {
    var controller = new AbortController();
    var done = fetch(url, { method: "POST", headers: authHeaders(ctx), body: JSON.stringify(body), signal: controller.signal })
      .then(function (response) {
        if (!response.ok) return httpError(response, ctx);
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("text/event-stream") < 0) {
          return response.text().then(function (text) {
            ctx.frame("http", text);
            ctx.turn.error("expected an event stream, got " + (type || "no content type"));
          });
        }
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        var finished = false;
        function dispatch(raw) {
          ctx.frame("sse", raw);
          var event = "message";
          var data = [];
          raw.split(/\r?\n/).forEach(function (line) {
            if (!line || line.charAt(0) === ":") return;
            var colon = line.indexOf(":");
            var field = colon < 0 ? line : line.slice(0, colon);
            var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") event = value;
            else if (field === "data") data.push(value);
          });
          if (!data.length) return;
          if (onEvent({ event: event, data: data.join("\n"), raw: raw }) === false) finished = true;
        }
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) {
              if (buffer.trim()) dispatch(buffer);
              if (!finished) ctx.turn.error("the stream ended without its closing frame");
              return;
            }
            buffer += decoder.decode(chunk.value, { stream: true });
            var match;
            while ((match = /\r?\n\r?\n/.exec(buffer))) {
              var raw = buffer.slice(0, match.index);
              buffer = buffer.slice(match.index + match[0].length);
              dispatch(raw);
              if (finished) {
                reader.cancel();
                return;
              }
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(function (error) {
        if (error && error.name === "AbortError") ctx.turn.error("stopped");
        else ctx.turn.error(String(error && error.message || error));
      });
    return { done: done, cancel: function () { controller.abort(); } };
  }

  function parseJSON(ctx, text) {
    try {
      return JSON.parse(text);
    } catch (e) {
      ctx.turn.error("a frame is not JSON: " + text);
      return null;
    }
  }

  function steps(list) {
    return (list || []).map(function (s) { return { id: s.id, title: s.title, status: s.status }; });
  }

  /* Workbench SSE: data {content}, event thinking / plan_update / todo_update / error, data [DONE]. */
  var workbench = {
    id: "workbench",
    label: "Workbench SSE (POST /api/chat)",
    start: function (ctx) {
      return streamSSE(ctx, ctx.base + "/api/chat", { model: ctx.model, messages: openaiMessages(ctx.history) }, function (e) {
        if (e.data === "[DONE]") {
          ctx.turn.finish();
          return false;
        }
        var payload = parseJSON(ctx, e.data);
        if (!payload) return;
        if (e.event === "message") ctx.turn.text(payload.content || "");
        else if (e.event === "thinking") ctx.turn.reasoning(payload.content || "");
        else if (e.event === "plan_update") ctx.turn.plan(payload.current_task_id, steps(payload.steps));
        else if (e.event === "todo_update") ctx.turn.todo(steps(payload.items));
        else if (e.event === "error") ctx.turn.error(payload.message + (payload.code ? " (" + payload.code + ")" : ""), true);
      });
    },
  };

  /* OpenAI Chat Completions streaming, with usage (stream_options.include_usage). */
  var openaiChat = {
    id: "openai-chat",
    label: "OpenAI Chat Completions (POST /v1/chat/completions)",
    start: function (ctx) {
      var tools = {}; // index -> id
      var body = { model: ctx.model, messages: openaiMessages(ctx.history), stream: true, stream_options: { include_usage: true } };
      return streamSSE(ctx, ctx.base + "/v1/chat/completions", body, function (e) {
        if (e.data === "[DONE]") {
          ctx.turn.finish();
          return false;
        }
        var chunk = parseJSON(ctx, e.data);
        if (!chunk) return;
        if (chunk.error) {
          ctx.turn.error(chunk.error.message || JSON.stringify(chunk.error));
          return false; // the in-band error is the last frame
        }
        (chunk.choices || []).forEach(function (choice) {
          var delta = choice.delta || {};
          if (delta.type === "thinking" && delta.content) ctx.turn.reasoning(delta.content);
          else if (delta.content) ctx.turn.text(delta.content);
          if (delta.reasoning_content) ctx.turn.reasoning(delta.reasoning_content);
          if (typeof delta.reasoning === "string" && delta.reasoning) ctx.turn.reasoning(delta.reasoning);
          (delta.tool_calls || []).forEach(function (call) {
            var fn = call.function || {};
            if (call.id) {
              tools[call.index] = call.id;
              ctx.turn.toolStart(call.id, fn.name || "");
            }
            if (fn.arguments) ctx.turn.toolDelta(tools[call.index], fn.arguments);
          });
          if (choice.finish_reason) ctx.turn.finish(choice.finish_reason);
        });
        (chunk.citations || []).forEach(function (url) { ctx.turn.source(url); });
        if (chunk.usage) {
          ctx.turn.usage({ input: chunk.usage.prompt_tokens, output: chunk.usage.completion_tokens, total: chunk.usage.total_tokens,
                           reasoning: (chunk.usage.completion_tokens_details || {}).reasoning_tokens });
        }
      });
    },
  };

  /* The Workbench Socket.IO fallback: emit chat {id, model, messages}; chunk / thinking /
   * plan_update / todo_update, then complete or error. One socket per page and key. */
  var sockets = {};
  function socketFor(ctx) {
    var key = ctx.base + "|" + (ctx.apiKey || "");
    if (!sockets[key]) {
      var options = { path: ctx.base + "/socket.io" };
      if (ctx.apiKey) options.auth = { token: ctx.apiKey };
      sockets[key] = window.io(window.location.origin, options);
    }
    return sockets[key];
  }

  var socketio = {
    id: "socketio",
    label: "Socket.IO fallback (chat event)",
    start: function (ctx) {
      if (!window.io) {
        ctx.turn.error("the Socket.IO client did not load");
        return { done: Promise.resolve(), cancel: function () {} };
      }
      var socket = socketFor(ctx);
      var id = ctx.id;
      var finish;
      var done = new Promise(function (resolve) { finish = resolve; });
      function onAny(name) {
        var args = Array.prototype.slice.call(arguments, 1);
        var payload = args[0];
        if (payload && typeof payload === "object" && payload.id !== undefined && payload.id !== id) return;
        ctx.frame("socket.io", JSON.stringify([name].concat(args)));
        if (name === "chunk") ctx.turn.text(payload.content || "");
        else if (name === "thinking") ctx.turn.reasoning(payload.content || "");
        else if (name === "plan_update") ctx.turn.plan(payload.current_task_id, steps(payload.steps));
        else if (name === "todo_update") ctx.turn.todo(steps(payload.items));
        else if (name === "complete") end(function () { ctx.turn.finish(); });
        else if (name === "error") end(function () { ctx.turn.error((payload && payload.message) || "error"); });
      }
      function onConnectError(error) {
        ctx.frame("socket.io", "connect_error " + (error && error.message));
        end(function () { ctx.turn.error("Socket.IO could not connect: " + (error && error.message)); });
      }
      function onDisconnect(reason) {
        ctx.frame("socket.io", "disconnect " + reason);
        end(function () { ctx.turn.error("the Socket.IO connection closed: " + reason); });
      }
      var ended = false;
      function end(action) {
        if (ended) return;
        ended = true;
        action();
        socket.offAny(onAny);
        socket.off("connect_error", onConnectError);
        socket.off("disconnect", onDisconnect);
        finish();
      }
      socket.onAny(onAny);
      socket.on("connect_error", onConnectError);
      socket.on("disconnect", onDisconnect);
      var request = { id: id, model: ctx.model, messages: openaiMessages(ctx.history) };
      ctx.frame("socket.io", "sent " + JSON.stringify(["chat", { id: id, model: ctx.model, messages: "[" + request.messages.length + " messages]" }]));
      socket.emit("chat", request);
      return {
        done: done,
        cancel: function () {
          socket.emit("cancel", { id: id });
        },
      };
    },
  };

  /* Open Responses: POST /v1/responses with stream true; `event: response.*` frames,
   * ending in response.completed / response.incomplete / response.failed. */
  var responses = {
    id: "responses",
    label: "Open Responses (POST /v1/responses)",
    path: "/v1/responses",
    start: function (ctx) {
      var input = ctx.history.map(function (message) {
        var content = [];
        if (message.text) content.push({ type: message.role === "assistant" ? "output_text" : "input_text", text: message.text });
        (message.images || []).forEach(function (url) { content.push({ type: "input_image", image_url: url }); });
        return { type: "message", role: message.role, content: content };
      });
      var calls = {}; // item id -> call id
      var failed = null;
      var body = { model: ctx.model, input: input, stream: true, store: false };
      return streamSSE(ctx, ctx.base + "/v1/responses", body, function (e) {
        if (e.data === "[DONE]") {
          if (!failed) ctx.turn.finish();
          return false;
        }
        var data = parseJSON(ctx, e.data);
        if (!data) return;
        var type = data.type || e.event;
        if (type === "response.output_text.delta") ctx.turn.text(data.delta || "");
        else if (/^response\.reasoning(_text|_summary_text)?\.delta$/.test(type)) ctx.turn.reasoning(data.delta || "");
        else if (type === "response.output_item.added" && data.item && data.item.type === "function_call") {
          calls[data.item.id] = data.item.call_id || data.item.id;
          ctx.turn.toolStart(calls[data.item.id], data.item.name);
        } else if (type === "response.function_call_arguments.delta") ctx.turn.toolDelta(calls[data.item_id] || data.item_id, data.delta || "");
        else if (type === "response.function_call_arguments.done") ctx.turn.toolCall(calls[data.item_id] || data.item_id, null, data.arguments);
        else if (type === "response.output_text.annotation.added" && data.annotation && data.annotation.url) {
          ctx.turn.source(data.annotation.url, data.annotation.title);
        } else if (type === "response.completed" || type === "response.incomplete") {
          var response = data.response || {};
          var usage = response.usage;
          if (usage) {
            ctx.turn.usage({ input: usage.input_tokens, output: usage.output_tokens, total: usage.total_tokens,
                             reasoning: (usage.output_tokens_details || {}).reasoning_tokens });
          }
          var reason = type === "response.incomplete" ? "incomplete" + (response.incomplete_details ? " (" + response.incomplete_details.reason + ")" : "") : "completed";
          ctx.turn.finish(reason);
        } else if (type === "response.failed" || type === "error") {
          var error = type === "error" ? data : ((data.response || {}).error || {});
          var message = error.message || "the response failed";
          if (failed !== message) ctx.turn.error(message + (error.code ? " (" + error.code + ")" : ""));
          failed = message;
        }
      });
    },
  };

  /* The AI SDK UI message stream (useChat): POST /api/ai/chat/<block> with UI messages;
   * `data: {type: ...}` chunks, then data [DONE]. Plan and todo come as data-plan / data-todo. */
  var uiStream = {
    id: "ui-stream",
    label: "AI SDK UI stream (POST /api/ai/chat/playground)",
    path: "/api/ai/chat/{block_id}",
    start: function (ctx) {
      var messages = ctx.history.map(function (message, index) {
        var parts = [];
        if (message.text) parts.push({ type: "text", text: message.text });
        (message.images || []).forEach(function (url) {
          parts.push({ type: "file", url: url, mediaType: (/^data:([^;,]+)/.exec(url) || [])[1] || "image/png" });
        });
        return { id: "m" + index, role: message.role, parts: parts };
      });
      var body = { id: ctx.id, messages: messages, trigger: "submit-message" };
      var url = ctx.base + "/api/ai/chat/playground";
      // a preset by name in the query; a model as the request's own value
      if (ctx.isPreset) url += "?preset=" + encodeURIComponent(ctx.model);
      else body.model = ctx.model;
      return streamSSE(ctx, url, body, function (e) {
        if (e.data === "[DONE]") return false;
        var chunk = parseJSON(ctx, e.data);
        if (!chunk) return;
        var type = chunk.type;
        if (type === "text-delta") ctx.turn.text(chunk.delta || "");
        else if (type === "reasoning-delta") ctx.turn.reasoning(chunk.delta || "");
        else if (type === "tool-input-start") ctx.turn.toolStart(chunk.toolCallId, chunk.toolName);
        else if (type === "tool-input-delta") ctx.turn.toolDelta(chunk.toolCallId, chunk.inputTextDelta || "");
        else if (type === "tool-input-available") ctx.turn.toolCall(chunk.toolCallId, chunk.toolName, chunk.input);
        else if (type === "file") ctx.turn.file(chunk.mediaType, chunk.url);
        else if (type === "source-url") ctx.turn.source(chunk.url, chunk.title);
        else if (type === "data-plan" && chunk.data) ctx.turn.plan(chunk.data.currentTaskId, steps(chunk.data.steps));
        else if (type === "data-todo" && chunk.data) ctx.turn.todo(steps(chunk.data.items));
        else if (type === "finish") {
          var usage = (chunk.messageMetadata || {}).usage;
          if (usage) ctx.turn.usage({ input: usage.inputTokens, output: usage.outputTokens, total: usage.totalTokens, reasoning: usage.reasoningTokens });
          ctx.turn.finish(chunk.finishReason);
        } else if (type === "error") ctx.turn.error(chunk.errorText || "error");
      });
    },
  };

  // Adapters with a `path` are offered only when the server's OpenAPI document lists it.
  window.SwitchboardProtocols = [workbench, socketio, openaiChat, responses, uiStream];
})();
