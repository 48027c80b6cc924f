// Writes the tasks.json fixtures exactly as Task Master writes them:
// JSON.stringify(data, null, 2). Run with `node make.mjs` after a change.
import { writeFileSync } from "node:fs";

const write = (name, data, trailing = "") =>
  writeFileSync(new URL(name, import.meta.url), JSON.stringify(data, null, 2) + trailing);

// Legacy layout, as task-master 0.1x wrote it: no trailing newline.
write("legacy.json", {
  tasks: [
    {
      id: 1, title: "Set up the repository", description: "Scaffold it", status: "done",
      dependencies: [], priority: "high", details: "git init\nfirst commit",
      testStrategy: "CI is green", subtasks: [],
    },
    {
      id: 2, title: "Build the API", description: "REST first", status: "in-progress",
      dependencies: [1], priority: "medium", details: "", testStrategy: "",
      subtasks: [
        { id: 1, title: "Schema", description: "", dependencies: [], details: "", status: "done" },
        { id: 2, title: "Handlers", description: "", dependencies: [1], details: "<info added on 2025-05-25T10:24:59.806Z>\nnote\n</info added on 2025-05-25T10:24:59.806Z>", status: "pending" },
        { id: 3, title: "Docs", description: "", dependencies: ["2.2", 1], details: "", status: "pending", testStrategy: "read them" },
      ],
    },
    {
      id: 3, title: "Ship", description: "", status: "pending", dependencies: [2, "2.3"],
      priority: "low", details: "", testStrategy: "", subtasks: [], complexity: 7.5,
    },
  ],
  metadata: { projectName: "Demo", totalTasks: 3, sourceFile: "prd.txt", generatedAt: "2025-05-01" },
});

// Tagged layout with a trailing newline; a tag that starts at 10 with gaps,
// tasks not in id order, metadata of both shapes.
write("tagged.json", {
  master: {
    tasks: [
      { id: 1, title: "One", description: "d", details: "", testStrategy: "", status: "pending", dependencies: [], priority: "medium", subtasks: [] },
      { id: 2, title: "Two", description: "", details: "", testStrategy: "", status: "done", dependencies: [1], priority: "high", subtasks: [] },
    ],
    metadata: { created: "2025-06-01T10:00:00.000Z", updated: "2025-06-02T10:00:00.000Z", description: "Tasks for master context" },
  },
  "feature-auth": {
    tasks: [
      { id: 14, title: "Fourteen", description: "", details: "", testStrategy: "", status: "review", dependencies: [10], priority: "critical", subtasks: [] },
      { id: 10, title: "Ten", description: "", details: "", testStrategy: "", status: "blocked", dependencies: [], priority: "medium", subtasks: [
        { id: 1, title: "Ten one", description: "", dependencies: [], details: "", status: "pending" },
      ] },
      { id: 12, title: "Twelve", description: "", details: "", testStrategy: "", status: "deferred", dependencies: ["10.1", 14], priority: "low", subtasks: [] },
    ],
    metadata: { projectName: "Auth", created: "2025-06-03" },
  },
}, "\n");

// What real files carry: string ids, statuses from other tools, fields
// nobody documented (nested), dependencies that point nowhere or into
// another tag, a repeated id, a cycle, no status, no priority.
write("odd.json", {
  master: {
    tasks: [
      { id: "1", title: "  Padded title  ", status: "completed", dependencies: ["2"], extra: { owner: { name: "ada", tags: ["x", 1, null] } }, subtasks: [
        { id: "1.1", title: "Sub as string", status: "in_progress", dependencies: ["1.2"] },
        { id: 2, title: "Sub two", status: "todo", dependencies: [] },
      ] },
      { id: 2, title: "Second", status: "deprecated", dependencies: ["1"], priority: "urgent" },
      { id: 2, title: "Repeated id", dependencies: [99, "7.1", "x"], priority: "whatever", status: "someday" },
      { id: 5, title: "No status", description: "unicode é ✓ \u0001 \"quoted\"" },
    ],
    metadata: { created: "2025-01-01" },
  },
  other: {
    tasks: [{ id: 7, title: "Seven", status: "pending", dependencies: [], subtasks: [{ id: 1, title: "S", status: "pending", dependencies: [] }] }],
    metadata: {},
  },
}, "\n");
