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
 * ctx: {base, apiKey, model, history, turn, frame, id}. history items are
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

  window.SwitchboardProtocols = [workbench, socketio, openaiChat];
})();
