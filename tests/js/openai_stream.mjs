// The official `openai` npm SDK streaming a chat completion from Switchboard.
// Usage: node openai_stream.mjs <base_url ending in /v1> <model> <prompt>
// Prints {"text", "finish_reason", "chunks"} as JSON; exits 1 on any error.
import OpenAI from "openai";

const [baseURL, model, prompt] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "sk-test", maxRetries: 0, timeout: 20000 });

try {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: prompt }],
    stream: true,
  });
  let text = "";
  let finishReason = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    const choice = chunk.choices[0];
    if (!choice) continue;
    text += choice.delta.content ?? "";
    finishReason = choice.finish_reason ?? finishReason;
  }
  console.log(JSON.stringify({ text, finish_reason: finishReason, chunks }));
} catch (error) {
  console.error(String(error?.stack ?? error));
  process.exit(1);
}
