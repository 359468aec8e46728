// One Workbench chat over Socket.IO with the real socket.io-client 4.x.
// Usage: node socketio_chat.mjs <server url> <polling|websocket|default> <model> <text> [path]
// (path: the Socket.IO path when the server is mounted under a prefix, e.g. /llm/socket.io)
// Prints one JSON line {transports, upgraded, chunks, thinking, completed} and
// exits 0 after `complete`; exits 1 on `error`, connect_error or timeout.
import { io } from "socket.io-client";

const [url, mode, model, text, path] = process.argv.slice(2);
const options = { reconnection: false, timeout: 10000 };
if (path) options.path = path;
if (mode === "polling") options.transports = ["polling"];
else if (mode === "websocket") options.transports = ["websocket"];
// "default": polling first, then upgrade to websocket

const socket = io(url, options);
const result = { transports: [], upgraded: false, chunks: [], thinking: [], completed: false };

function finish(code, error) {
  if (error) result.error = String(error);
  socket.close();
  console.log(JSON.stringify(result));
  process.exit(code);
}

const timer = setTimeout(() => finish(1, "timed out"), 20000);

// The manager's "open" comes when the Engine.IO session opens, before any
// upgrade (by `connect` the upgrade may already be done).
socket.io.on("open", () => {
  const engine = socket.io.engine;
  result.transports.push(engine.transport.name);
  engine.on("upgrade", (transport) => {
    result.upgraded = true;
    result.transports.push(transport.name);
  });
});
socket.on("connect", () => {
  socket.emit("chat", { model, messages: [{ role: "user", content: text }] });
});
socket.on("connect_error", (error) => finish(1, `connect_error: ${error.message}`));
socket.on("thinking", (data) => result.thinking.push(data.content));
socket.on("chunk", (data) => result.chunks.push(data.content));
socket.on("error", (data) => finish(1, `error event: ${JSON.stringify(data)}`));
socket.on("complete", () => {
  result.completed = true;
  const waitForUpgrade = mode === "default" && !result.upgraded;
  if (!waitForUpgrade) { clearTimeout(timer); finish(0); return; }
  // the chat is done; give the upgrade (normally long done) a bounded moment
  let tries = 0;
  const poll = setInterval(() => {
    if (result.upgraded || ++tries > 50) { clearInterval(poll); clearTimeout(timer); finish(0); }
  }, 100);
});
