// Drives Switchboard's UI message stream with the real `ai` package (useChat without React).
//
//   node tests/js/ui_chat.mjs '<json plan>'   -> prints one JSON line with the outcome
//
// Plans ({"mode": ...}):
//   transport: DefaultChatTransport.sendMessages + readUIMessageStream -> {chunks, message}
//   chat:      AbstractChat.sendMessage (optionally answering tool calls) -> {status, error, messages, toolCalls}
//   text:      the same through TextStreamChatTransport
//   resume:    a chat whose connection is dropped mid-reply, then resumeStream() on it and on a
//              fresh chat with the same id (a reloaded page) -> {first, same, reloaded, statuses}
//   reconnect: resumeStream() on a fresh chat -> {status, messages} (nothing in flight: unchanged)
import { AbstractChat, DefaultChatTransport, TextStreamChatTransport, lastAssistantMessageIsCompleteWithToolCalls,
         readUIMessageStream } from 'ai';

const plan = JSON.parse(process.argv[2]);

class State {
  constructor(messages = []) { this.messages = messages; this.status = 'ready'; this.error = undefined; this.listeners = []; }
  pushMessage(message) { this.messages = this.messages.concat(message); this.changed(); }
  popMessage() { this.messages = this.messages.slice(0, -1); this.changed(); }
  replaceMessage(index, message) {
    this.messages = [...this.messages.slice(0, index), this.snapshot(message), ...this.messages.slice(index + 1)];
    this.changed();
  }
  snapshot(value) { return structuredClone(value); }
  changed() { for (const listener of this.listeners) listener(this.messages); }
}

class Chat extends AbstractChat {
  constructor({ messages, ...options }) {
    const state = new State(messages);
    super({ ...options, state });
    this.chatState = state;
  }
}

function transport(options = {}) {
  const Kind = plan.protocol === 'text' ? TextStreamChatTransport : DefaultChatTransport;
  return new Kind({ api: plan.api, headers: plan.headers, body: plan.body, ...options });
}

function userMessage(text, id = 'u1') {
  return { id, role: 'user', parts: [...(plan.files || []), { type: 'text', text }] };
}

async function runTransport() {
  const stream = await transport().sendMessages({
    trigger: 'submit-message', chatId: plan.chatId || 'chat-1', messageId: undefined,
    messages: plan.messages || [userMessage(plan.text)], abortSignal: undefined,
  });
  const [forChunks, forMessages] = stream.tee();
  const chunks = [];
  const collect = (async () => { for await (const chunk of forChunks) chunks.push(chunk); })();
  let message = null;
  let error = null;
  try {
    for await (const current of readUIMessageStream({ stream: forMessages, terminateOnError: true })) message = current;
  } catch (caught) {
    error = String(caught && caught.message || caught);
  }
  await collect;
  return { chunks, message, error };
}

function makeChat(extra = {}) {
  const errors = [];
  const toolCalls = [];
  const finishes = [];
  let chat;
  chat = new Chat({
    id: plan.chatId || 'chat-1',
    transport: transport(),
    messages: plan.messages ? structuredClone(plan.messages) : [],
    onError: (error) => errors.push(String(error && error.message || error)),
    onFinish: ({ finishReason, isError, isAbort }) => finishes.push({ finishReason: finishReason ?? null, isError, isAbort }),
    sendAutomaticallyWhen: plan.toolOutput !== undefined ? lastAssistantMessageIsCompleteWithToolCalls : undefined,
    onToolCall: plan.toolOutput !== undefined ? ({ toolCall }) => {
      toolCalls.push({ toolName: toolCall.toolName, input: toolCall.input, dynamic: !!toolCall.dynamic });
      // not awaited: the SDK's documented pattern inside onToolCall
      chat.addToolOutput({ tool: toolCall.toolName, toolCallId: toolCall.toolCallId, output: plan.toolOutput });
    } : undefined,
    ...extra,
  });
  return { chat, errors, toolCalls, finishes };
}

async function settle(chat, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  // a tool round trip sends again on its own after the first reply: wait until nothing is pending
  let quiet = 0;
  while (Date.now() < deadline) {
    if (chat.status === 'ready' || chat.status === 'error') quiet += 1; else quiet = 0;
    if (quiet >= 10) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`chat still ${chat.status} after ${timeoutMs} ms`);
}

async function runChat() {
  const { chat, errors, toolCalls, finishes } = makeChat();
  await chat.sendMessage({ text: plan.text, files: plan.files });
  await settle(chat);
  return { status: chat.status, error: chat.error ? String(chat.error.message || chat.error) : null,
           errors, toolCalls, finishes, messages: chat.messages };
}

async function runResume() {
  const { chat, errors } = makeChat();
  let dropped = false;
  chat.chatState.listeners.push((messages) => {
    const last = messages[messages.length - 1];
    // text or reasoning: the first words of a reply, whatever kind they are
    const text = last && last.role === 'assistant'
      ? last.parts.filter((p) => p.type === 'text' || p.type === 'reasoning').map((p) => p.text).join('') : '';
    if (!dropped && text.length >= (plan.dropAfter || 1)) {
      dropped = true;
      chat.stop();  // the client goes away mid-reply (the fetch is aborted)
    }
  });
  await chat.sendMessage({ text: plan.text });
  await settle(chat);
  const first = structuredClone(chat.messages);
  // a reloaded page: a new chat with the same id and the history the app kept (the user message)
  const reloaded = makeChat({ messages: [structuredClone(first[0])] });
  await Promise.all([chat.resumeStream(), reloaded.chat.resumeStream()]);
  await settle(chat);
  await settle(reloaded.chat);
  return { dropped, first, same: chat.messages, reloaded: reloaded.chat.messages,
           statuses: [chat.status, reloaded.chat.status], errors: errors.concat(reloaded.errors) };
}

async function runReconnect() {
  const { chat, errors } = makeChat();
  await chat.resumeStream();
  await settle(chat);
  return { status: chat.status, errors, messages: chat.messages };
}

const modes = { transport: runTransport, chat: runChat, text: runChat, resume: runResume, reconnect: runReconnect };
try {
  const outcome = await modes[plan.mode]();
  console.log(JSON.stringify(outcome));
} catch (error) {
  console.log(JSON.stringify({ crashed: String(error && error.stack || error) }));
  process.exitCode = 1;
}
