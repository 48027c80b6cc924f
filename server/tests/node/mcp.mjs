// Drives the official MCP TypeScript SDK's client for the server's tests:
//   node mcp.mjs <url of /mcp> <token or ""> '<[[tool, arguments], ...]>'
// Lists the tools, makes each call in order, and prints one JSON object:
// {"tools": [...], "results": [...]} (a call that throws gives {"thrown"}),
// or {"connect_error": "..."} when the session cannot start.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token, plan] = process.argv.slice(2);
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
const client = new Client({ name: "taskmaster-tests", version: "1.0.0" });
try {
  await client.connect(transport);
} catch (error) {
  console.log(JSON.stringify({ connect_error: String(error) }));
  process.exit(0);
}
const out = { tools: (await client.listTools()).tools, results: [] };
for (const [name, args] of JSON.parse(plan || "[]")) {
  try {
    out.results.push(await client.callTool({ name, arguments: args }));
  } catch (error) {
    out.results.push({ thrown: String(error) });
  }
}
await client.close();
console.log(JSON.stringify(out));
