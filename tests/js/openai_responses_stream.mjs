// The official `openai` npm SDK streaming an Open Responses response from Switchboard.
// Usage: node openai_responses_stream.mjs <base_url ending in /v1> <model> <prompt>
// Prints {"text", "status", "types", "id"} as JSON; exits 1 on any error.
import OpenAI from "openai";

const [baseURL, model, prompt] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "sk-test", maxRetries: 0, timeout: 20000 });

try {
  const stream = client.responses.stream({ model, input: prompt });
  const types = [];
  for await (const event of stream) types.push(event.type);
  const final = await stream.finalResponse();
  const text = final.output
    .filter((item) => item.type === "message")
    .flatMap((item) => item.content.map((part) => part.text ?? ""))
    .join("");
  console.log(JSON.stringify({ text, status: final.status, types, id: final.id }));
} catch (error) {
  console.error(String(error?.stack ?? error));
  process.exit(1);
}
