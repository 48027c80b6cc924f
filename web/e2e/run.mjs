// Browser scenarios for the web app, in Debian's headless Chromium driven by
// playwright-core. The Rust test that starts the server runs one scenario:
//
//   node run.mjs <scenario> '<json: base, users, project, artifacts, …>'
//
// and talks to it in JSON lines: the scenario prints {"step": …} when it
// needs the test to act (restart the server, say), and waits for a line back.
// It prints {"result": …} at the end and exits 0; any failure exits 1 with
// the reason on stderr.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { mkdirSync, readFileSync } from "node:fs";

const [scenario, rawArgs] = process.argv.slice(2);
const args = JSON.parse(rawArgs);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const say = (message) => process.stdout.write(JSON.stringify(message) + "\n");
async function step(name, extra = {}) {
  say({ step: name, ...extra });
  const reply = await lines.next();
  if (reply.done) throw new Error(`the test went away during step ${name}`);
  return JSON.parse(reply.value);
}
function check(condition, message) {
  if (!condition) throw new Error(message);
}
mkdirSync(args.artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: `${args.artifacts}/${name}.png` });

/** The app shows its own page: the server's first paint of it (a picture
 * the app draws over, see web/src/first_paint.rs) is gone, so what a
 * scenario finds and clicks is the app's. */
const appShown = (page) => page.waitForFunction(() => !document.querySelector("#shell.first-paint"),
  null, { timeout: 10000 });
async function visit(page, url) {
  const response = await page.goto(url);
  await appShown(page);
  return response;
}
async function reload(page) {
  const response = await page.reload();
  await appShown(page);
  return response;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-extensions", "--no-first-run"],
});

/** A browser context signed in as `user`: it signs in as the app does, and
 * keeps the session cookies the server sets (the app keeps no token). */
async function signedIn(user, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const answer = await context.request.post(`${args.base}/api/v1/auth/login`,
    { data: { email: user.email, password: user.password } });
  check(answer.ok(), `signing in ${user.email} failed: ${answer.status()}`);
  await context.addInitScript((profile) => {
    localStorage.setItem("taskmaster.user", profile);
  }, JSON.stringify({ id: user.id, email: user.email, name: user.name }));
  await watchPolicy(context);
  return context;
}

/** Records every Content-Security-Policy violation of the context's pages
 * (in `window.__violations`), so a scenario can require that there were none. */
async function watchPolicy(context) {
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
      window.__violations.push(`${event.violatedDirective}: ${event.blockedURI || "inline"}`);
    });
  });
}
const violations = (page) => page.evaluate(() => window.__violations);

const axeSource = readFileSync(new URL("../node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
/** axe-core's verdict on the page as it is now (WCAG 2.1 A and AA, and
 * axe's best practices): the rules it breaks, with a few of the elements.
 * Evaluated through the DevTools protocol, which the page's CSP does not
 * govern, so the app's policy stays as strict as it is. */
async function axeCheck(page) {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
    });
    return result.violations.map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      elements: violation.nodes.slice(0, 3).map((node) => node.target.join(" ")),
    }));
  });
}

async function openBoard(context, query = "") {
  const page = await context.newPage();
  await visit(page, `${args.base}/projects/${args.project}${query}`);
  await page.waitForSelector('[data-link="live"]', { timeout: 10000 });
  await page.waitForSelector('[data-load="ready"]', { timeout: 30000 });
  return page;
}

/** The seq of the board copy the app keeps on the device for `user`, once
 * it is there (read from IndexedDB as the app wrote it). */
async function savedSeq(page, user, timeout = 15000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const seq = await page.evaluate(async (key) => {
      // Opened only once the app made it: opening creates a database.
      if (!(await indexedDB.databases()).some((db) => db.name === "taskmaster")) return null;
      const db = await new Promise((resolve, reject) => {
        const request = indexedDB.open("taskmaster");
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      try {
        if (!db.objectStoreNames.contains("boards")) return null;
        const head = await new Promise((resolve, reject) => {
          const request = db.transaction("boards").objectStore("boards").get(key);
          request.onsuccess = () => resolve(request.result);
          request.onerror = () => reject(request.error);
        });
        return head ? JSON.parse(head).seq : null;
      } finally {
        db.close();
      }
    }, `${user.id}/${args.project}`);
    if (seq !== null) return seq;
    check(Date.now() < deadline, "the board was not kept on the device");
    await page.waitForTimeout(200);
  }
}

/** Waits until the service worker controls the page. */
async function serviceWorkerInControl(page) {
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 15000 });
}

const rowStatus = (page, id) =>
  page.$eval(`[data-task-id="${id}"] select.status`, (select) => select.value).catch(() => null);

const scenarios = {
  // Sign up from the first page, create a project, add a task, open it.
  async signup() {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await watchPolicy(context);
    const page = await context.newPage();
    const fetched = [];
    page.on("request", (request) => fetched.push(new URL(request.url()).pathname));
    const taskModuleFetched = () => fetched.some((path) => /split_.*task_route.*\.wasm$/.test(path));
    await visit(page, args.base + "/");
    await page.waitForSelector("text=Sign in");
    await shot(page, "sign-in");
    await page.click("text=Create an account");
    await page.fill('input[name="name"]', "Ada Lovelace");
    await page.fill('input[name="email"]', args.email);
    await page.fill('input[name="password"]', "correct horse battery");
    await shot(page, "sign-up");
    await page.click('button[type="submit"]');
    await page.waitForSelector("text=Projects");
    await page.fill('input[name="project-name"]', "Launch plan");
    await page.click("text=Create project");
    await page.waitForSelector('[data-link="live"]');
    await page.waitForSelector("h1:has-text('Launch plan')");
    await page.fill('input[name="new-task"]', "Write the announcement");
    await page.click("text=Add task");
    await page.waitForSelector('[data-task-id="1"] >> text=Write the announcement');
    await shot(page, "board");
    // The task page's code is a module of its own, prefetched once the
    // page is idle, so it is there before the first task is opened.
    await page.waitForFunction(() => performance.getEntriesByType("resource")
      .some((entry) => /split_.*task_route.*\.wasm$/.test(entry.name) && entry.responseEnd > 0), null, { timeout: 10000 });
    const taskModuleBeforeOpening = taskModuleFetched();
    const opening = Date.now();
    await page.click('[data-task-id="1"] a.task-title');
    await page.waitForSelector("h1:has-text('Task #1')");
    const openTaskMs = Date.now() - opening;
    const taskModuleAfterOpening = taskModuleFetched();
    const detailUrl = page.url();

    // Edit fields, add a subtask.
    await page.selectOption('select[name="priority"]', "high");
    await page.fill('textarea[name="details"]', "Two paragraphs and a link to the demo.");
    await page.click('button[type="submit"]:has-text("Save")');
    await page.fill('input[name="subtask-title"]', "Draft the outline");
    await page.click("text=Add subtask");
    await page.waitForSelector(".subtasks >> text=#2 Draft the outline");
    await shot(page, "task-detail");
    const saved = await page.evaluate(async () => {
      const response = await fetch(location.pathname.replace("/projects/", "/api/v1/projects/"));
      return response.json();
    });

    // "Next task" opens the task to work on.
    await page.click("text=← Board");
    await page.click("text=Next task");
    await page.waitForURL(/\/tasks\/1$/);

    // Invite a member by email with a role.
    await page.click("nav >> text=Members");
    await page.fill('input[name="invite-email"]', args.inviteEmail);
    await page.selectOption('select[name="invite-role"]', "viewer");
    await page.click("text=Invite");
    await page.waitForSelector("text=is now viewer");
    await shot(page, "members");

    const projects = await page.evaluate(async () => {
      const response = await fetch("/api/v1/projects");
      return (await response.json()).items.map((project) => project.name);
    });

    // The session is in cookies script cannot read, and nothing on the page
    // holds the token: only the CSRF value is visible.
    const cookies = await context.cookies();
    const session = cookies.find((cookie) => cookie.name.endsWith("tm_session"));
    const pageSees = await page.evaluate(() => ({
      cookie: document.cookie,
      stored: Object.keys(localStorage).map((key) => localStorage.getItem(key)).join("\n"),
    }));
    // A write without the CSRF header is refused even with the cookie.
    const forged = await page.evaluate(async () =>
      (await fetch("/api/v1/projects", { method: "POST", headers: { "content-type": "application/json" },
                                         body: JSON.stringify({ name: "forged" }) })).status);
    // An inline script injected into the page does not run.
    const injectedRan = await page.evaluate(async () => {
      const script = document.createElement("script");
      script.textContent = "window.__injected = true";
      document.body.appendChild(script);
      await new Promise((resolve) => setTimeout(resolve, 100));
      return window.__injected === true;
    });
    const policyViolations = await violations(page);

    await page.click("text=Sign out");
    await page.waitForSelector("h1:has-text('Sign in')");
    const afterSignOut = await context.cookies();
    const meAfterSignOut = await page.evaluate(async () => (await fetch("/api/v1/auth/me")).status);
    return { projects, url: detailUrl, saved,
             taskModuleBeforeOpening, taskModuleAfterOpening, openTaskMs,
             session: session && { httpOnly: session.httpOnly, secure: session.secure, sameSite: session.sameSite,
                                   name: session.name },
             tokenVisibleToPage: !!session && (pageSees.cookie.includes(session.value) || pageSees.stored.includes(session.value)),
             csrfVisibleToPage: /tm_csrf=/.test(pageSees.cookie),
             forged, injectedRan, policyViolations,
             cookiesAfterSignOut: afterSignOut.filter((cookie) => cookie.name.includes("tm_")).map((cookie) => cookie.name),
             meAfterSignOut };
  },

  // Two users on one board: a change by one shows for the other without reload.
  // Markdown in a task renders as formatted text, inert: the test wrote a
  // script, an image with an onerror handler and a javascript: link into
  // the details; agents' notes show collapsed.
  async markdown() {
    const context = await signedIn(args.users[0]);
    const page = await context.newPage();
    await visit(page, `${args.base}/projects/${args.project}/tasks/1`);
    const details = 'section.markdown[aria-label="Details as shown"]';
    await page.waitForSelector(`${details} h2`, { timeout: 15000 });
    await page.waitForTimeout(300);
    const seen = await page.$eval(details, (section) => ({
      headings: [...section.querySelectorAll("h2")].map((h) => h.textContent),
      strong: [...section.querySelectorAll("strong")].map((s) => s.textContent),
      items: section.querySelectorAll("li").length,
      scripts: section.querySelectorAll("script").length,
      images: section.querySelectorAll("img").length,
      handlers: [...section.querySelectorAll("*")].filter((element) =>
        [...element.attributes].some((attribute) => attribute.name.startsWith("on"))).length,
      links: [...section.querySelectorAll("a")].map((a) => a.getAttribute("href")),
      text: section.textContent,
      notes: [...section.querySelectorAll("details.note")].map((note) => ({
        summary: note.querySelector("summary").textContent, open: note.open })),
    }));
    const pwned = await page.evaluate(() => window.__pwned ?? null);
    await page.click(`${details} details.note summary`);
    const opened = await page.$eval(`${details} details.note`, (note) => note.open);
    await shot(page, "task-markdown");
    // The rendering follows the typing.
    await page.fill('textarea[name="description"]', "Now **bold**");
    await page.waitForSelector('section.markdown[aria-label="Description as shown"] strong');
    const live = await page.$eval('section.markdown[aria-label="Description as shown"] strong',
      (strong) => strong.textContent);
    return { ...seen, pwned, opened, live, policyViolations: await violations(page) };
  },

  // Light and dark (the system's setting), desktop and phone: the colours
  // switch, text keeps its contrast, and each screen is saved as a picture.
  async themes() {
    const contrast = () => {
      const rgb = (value) => value.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
      const luminance = ([r, g, b]) => {
        const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
      };
      const ratio = (a, b) => {
        const [x, y] = [luminance(rgb(a)), luminance(rgb(b))].sort((p, q) => q - p);
        return (x + 0.05) / (y + 0.05);
      };
      const style = (selector) => getComputedStyle(document.querySelector(selector));
      const root = style(":root"), row = style(".task-row"), list = style(".virtual-list");
      const who = style(".who"), topbar = style(".topbar");
      return {
        background: root.backgroundColor,
        text: ratio(root.color, root.backgroundColor),
        rowText: ratio(row.color, list.backgroundColor),
        muted: ratio(who.color, topbar.backgroundColor),
      };
    };
    const results = {};
    for (const scheme of ["light", "dark"]) {
      for (const [device, viewport] of [["desktop", { width: 1280, height: 900 }], ["phone", { width: 390, height: 844 }]]) {
        const context = await signedIn(args.users[0],
          { viewport, colorScheme: scheme, isMobile: device === "phone", hasTouch: device === "phone" });
        const page = await context.newPage();
        await visit(page, `${args.base}/projects/${args.project}`);
        await page.waitForSelector('[data-load="ready"]', { timeout: 30000 });
        await page.waitForSelector(".task-row");
        results[`${scheme}-${device}`] = {
          ...(await page.evaluate(contrast)),
          overflow: await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth),
          titleWidth: await page.$eval(".task-row .task-title", (title) => title.getBoundingClientRect().width),
        };
        await shot(page, `board-${scheme}-${device}`);
        await visit(page, `${args.base}/projects/${args.project}/tasks/1`);
        await page.waitForSelector("h1:has-text('Task #1')");
        await shot(page, `task-${scheme}-${device}`);
        await context.close();
      }
    }
    return results;
  },

  // The board by keyboard: help, cursor, selection, a bulk change of every
  // task seen by a second browser, status and opening by key, the filter.
  async keyboard() {
    const [alice, bob] = [await signedIn(args.users[0]), await signedIn(args.users[1])];
    const page = await openBoard(alice);
    const other = await openBoard(bob, "?status=done");
    await page.waitForSelector('[data-task-id="1"]');
    const result = {};
    await page.keyboard.press("?");
    await page.waitForSelector('[role="dialog"]');
    result.helpRows = await page.$$eval('[role="dialog"] tr', (rows) => rows.length);
    result.helpFocused = await page.evaluate(() => document.activeElement?.textContent);
    await shot(page, "shortcuts");
    await page.keyboard.press("Escape");
    await page.waitForSelector('[role="dialog"]', { state: "detached" });

    await page.keyboard.press("j");
    await page.keyboard.press("j");
    result.cursor = await page.$eval(".task-row.cursor", (row) => row.dataset.taskId);
    result.current = await page.$eval(".task-row.cursor", (row) => row.getAttribute("aria-current"));
    await page.keyboard.press("x");
    await page.keyboard.press("j");
    await page.keyboard.press("x");
    // The bulk bar's code is a module of its own: it shows once loaded.
    result.chosenByKeys = await (await page.waitForSelector("[data-chosen]")).textContent();
    await page.click('[data-task-id="5"] input.choose');
    result.chosenByPointer = await page.$eval("[data-chosen]", (count) => count.textContent);
    await page.keyboard.press("Escape");
    await page.waitForSelector("[data-chosen]", { state: "detached" });

    // Every task, chosen with `a`, done at once; the second browser sees it.
    await page.keyboard.press("a");
    result.chosenAll = await page.$eval("[data-chosen]", (count) => count.textContent);
    await shot(page, "bulk-bar");
    const started = Date.now();
    await page.selectOption('select[name="bulk-status"]', "done");
    await other.waitForSelector(`[data-load="ready"]:has-text("${args.count} tasks")`, { timeout: 10000 });
    result.seenByOtherMs = Date.now() - started;
    result.bulkSelectAfter = await page.$eval('select[name="bulk-status"]', (select) => select.value);
    await shot(other, "bulk-seen");

    // `s` puts the focus on the cursor's status; Enter opens the task.
    await page.keyboard.press("Escape");
    await page.keyboard.press("s");
    result.statusFocused = await page.evaluate(() =>
      document.activeElement?.matches(".task-row.cursor select.status") ?? false);
    await page.evaluate(() => document.activeElement.blur());
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/tasks\/\d+$/);
    result.opened = new URL(page.url()).pathname;
    await page.goBack();
    await page.waitForSelector('[data-load="ready"]');
    await page.keyboard.press("/");
    result.filterFocused = await page.evaluate(() => document.activeElement?.getAttribute("name"));
    result.policyViolations = [...(await violations(page)), ...(await violations(other))];
    return result;
  },

  // The dependency graph of a large project: drawn fast with a bounded
  // DOM, the next task and the critical path marked, live, and a node
  // opens its task.
  async graph() {
    const context = await signedIn(args.users[0]);
    const page = await context.newPage();
    const started = Date.now();
    await visit(page, `${args.base}/projects/${args.project}/graph`);
    await page.waitForSelector('[data-graph="ready"]', { timeout: 30000 });
    await page.waitForSelector(`.node[data-task-id="${args.total}"], .node[data-task-id="1"]`);
    const renderMs = Date.now() - started;
    const read = () => page.evaluate(() => ({
      drawn: document.querySelectorAll(".node").length,
      edges: document.querySelectorAll(".edge").length,
      critical: document.querySelectorAll(".edge.critical").length,
      next: document.querySelector(".node.next")?.dataset.taskId ?? null,
      layoutMs: Number(document.querySelector(".graph").dataset.layoutMs),
      summary: document.querySelector("[data-graph]").textContent,
    }));
    const first = await read();
    await shot(page, "graph");
    // Scroll to the last column: other nodes, still a bounded number.
    await page.$eval(".graph", (graph) => { graph.scrollLeft = graph.scrollWidth; graph.scrollTop = 0; });
    await page.waitForTimeout(200);
    const scrolled = await read();
    const lastShown = await page.$(`.node[data-task-id="${args.total}"]`) !== null;
    await page.$eval(".graph", (graph) => { graph.scrollLeft = 0; graph.scrollTop = 0; });
    await page.waitForSelector('.node[data-task-id="3"]');
    // Live: the test marks task 3 done; the graph follows.
    await step("mark_3_done");
    const liveStarted = Date.now();
    await page.waitForSelector('.node.status-done[data-task-id="3"]', { timeout: 5000 });
    const liveMs = Date.now() - liveStarted;
    await page.waitForFunction((before) =>
      document.querySelector(".node.next")?.dataset.taskId !== before, first.next, { timeout: 5000 });
    const nextAfter = await page.evaluate(() => document.querySelector(".node.next")?.dataset.taskId);
    // The layout's own time over successive live changes: the first runs
    // of freshly loaded code against the steady state.
    const layoutSeries = [];
    for (let round = 1; round <= 12; round++) {
      await page.evaluate(async ({ project, round }) => {
        const csrf = document.cookie.split(";").map((pair) => pair.trim().split("="))
          .find(([name]) => name === "__Host-tm_csrf" || name === "tm_csrf")?.[1];
        const answer = await fetch(`/api/v1/projects/${project}/tasks/1`, {
          method: "PATCH",
          headers: { "content-type": "application/json", "x-csrf-token": csrf },
          body: JSON.stringify({ title: `Layout round ${round}` }),
        });
        if (!answer.ok) throw new Error(`PATCH answered ${answer.status}`);
      }, { project: args.project, round });
      await page.waitForFunction((round) => document.querySelector('.node[data-task-id="1"]')
        ?.textContent.includes(`Layout round ${round}`), round, { timeout: 5000 });
      layoutSeries.push(Number(await page.$eval(".graph", (graph) => graph.dataset.layoutMs)));
    }
    await page.focus('.node[data-task-id="3"]');
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/tasks\/3$/);
    return { renderMs, first, scrolled, lastShown, liveMs, nextAfter, layoutSeries,
             policyViolations: await violations(page) };
  },

  // Cards move between status columns by mouse, by touch and by keyboard;
  // a second browser sees each move.
  async drag() {
    const [alice, bob] = [await signedIn(args.users[0]), await signedIn(args.users[1])];
    const page = await openBoard(alice, "?view=columns");
    const other = await openBoard(bob, "?view=columns");
    const centre = async (selector) => {
      const box = await (await page.waitForSelector(selector)).boundingBox();
      return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
    };
    const result = {};

    // The mouse: task 1 from pending to done.
    const from = await centre('[data-task-id="1"] .drag-handle');
    const to = await centre('[data-status="done"] .cards');
    await page.mouse.move(from.x, from.y);
    await page.mouse.down();
    for (let i = 1; i <= 10; i++) {
      await page.mouse.move(from.x + (to.x - from.x) * i / 10, from.y + (to.y - from.y) * i / 10);
    }
    result.ghost = await page.$eval(".drag-ghost", (ghost) => ghost.textContent).catch(() => null);
    result.highlighted = await page.$eval(".column.drop-target", (column) => column.dataset.status).catch(() => null);
    await shot(page, "dragging");
    let started = Date.now();
    await page.mouse.up();
    await other.waitForSelector('[data-status="done"] [data-task-id="1"]', { timeout: 5000 });
    result.mouseSeenMs = Date.now() - started;

    // A finger: task 2 from pending to review (touch events, as a phone sends them).
    const touch = await page.context().newCDPSession(page);
    const start = await centre('[data-task-id="2"] .drag-handle');
    const end = await centre('[data-status="review"] .cards');
    await touch.send("Input.dispatchTouchEvent", { type: "touchStart", touchPoints: [{ x: start.x, y: start.y }] });
    for (let i = 1; i <= 10; i++) {
      await touch.send("Input.dispatchTouchEvent", { type: "touchMove",
        touchPoints: [{ x: start.x + (end.x - start.x) * i / 10, y: start.y + (end.y - start.y) * i / 10 }] });
    }
    started = Date.now();
    await touch.send("Input.dispatchTouchEvent", { type: "touchEnd", touchPoints: [] });
    await other.waitForSelector('[data-status="review"] [data-task-id="2"]', { timeout: 5000 });
    result.touchSeenMs = Date.now() - started;

    // The keyboard: task 3 one column right, then the focus follows it.
    await page.focus('[data-task-id="3"] .drag-handle');
    started = Date.now();
    await page.keyboard.press("ArrowRight");
    await other.waitForSelector('[data-status="in-progress"] [data-task-id="3"]', { timeout: 5000 });
    result.keySeenMs = Date.now() - started;
    await page.waitForFunction(() => document.activeElement?.closest('[data-status="in-progress"]') !== null);
    result.announced = await page.$eval('[aria-live="polite"]', (live) => live.textContent);
    // A click on the handle without moving is not a drag.
    await page.click('[data-task-id="3"] .drag-handle');
    result.clickMoved = await page.$('[data-status="in-progress"] [data-task-id="3"]') === null;
    result.policyViolations = [...(await violations(page)), ...(await violations(other))];
    return result;
  },

  // axe-core on every screen, light and dark: the rules each one breaks.
  async accessibility() {
    const found = {};
    const check = async (page, name) => {
      found[name] = await axeCheck(page);
      await shot(page, name);
    };
    const devices = [["desktop", { viewport: { width: 1280, height: 900 } }],
                     ["phone", { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true }]];
    for (const [device, screen] of devices) for (const colors of ["light", "dark"]) {
      const scheme = `${device}-${colors}`;
      const options = { ...screen, colorScheme: colors };
      const anonymous = await browser.newContext(options);
      const page = await anonymous.newPage();
      await visit(page, args.base + "/");
      await page.waitForSelector("text=Sign in");
      await check(page, `sign-in-${scheme}`);
      await page.click("text=Create an account");
      await page.waitForSelector('input[name="name"]');
      await check(page, `sign-up-${scheme}`);
      await anonymous.close();

      const context = await signedIn(args.users[0], options);
      const user = await context.newPage();
      await visit(user, args.base + "/projects");
      await user.waitForSelector(`text=${args.projectName}`);
      await check(user, `projects-${scheme}`);
      await visit(user, `${args.base}/projects/${args.project}`);
      await user.waitForSelector('[data-load="ready"]');
      await user.waitForSelector(".task-row");
      await check(user, `board-${scheme}`);
      await user.keyboard.press("?");
      await user.waitForSelector('[role="dialog"]');
      await check(user, `shortcuts-${scheme}`);
      await user.keyboard.press("Escape");
      await user.keyboard.press("a");
      await user.waitForSelector(".bulk-bar");
      await check(user, `bulk-bar-${scheme}`);
      await user.keyboard.press("Escape");
      await visit(user, `${args.base}/projects/${args.project}?view=columns`);
      await user.waitForSelector(".task-card");
      await check(user, `columns-${scheme}`);
      await visit(user, `${args.base}/projects/${args.project}/tasks/1`);
      await user.waitForSelector("section.markdown");
      await user.click("details.note summary");
      await check(user, `task-${scheme}`);
      await visit(user, `${args.base}/projects/${args.project}/members`);
      await user.waitForSelector("input[name=\"invite-email\"]");
      await check(user, `members-${scheme}`);
      await visit(user, `${args.base}/projects/${args.project}/graph`);
      await user.waitForSelector(".node");
      await check(user, `graph-${scheme}`);
      await context.close();
    }
    return found;
  },

  async live() {
    const [alice, bob] = args.users;
    const pageA = await openBoard(await signedIn(alice));
    const pageB = await openBoard(await signedIn(bob));
    await pageA.waitForFunction(() => document.querySelectorAll(".presence .avatar").length === 2, null, { timeout: 5000 });
    await pageB.waitForFunction(() => document.querySelectorAll(".presence .avatar").length === 2, null, { timeout: 5000 });

    const started = Date.now();
    await pageA.selectOption('[data-task-id="1"] select.status', "in-progress");
    await pageB.waitForFunction(
      () => document.querySelector('[data-task-id="1"] select.status')?.value === "in-progress",
      null, { timeout: 1000 });
    const statusMs = Date.now() - started;

    const created = Date.now();
    await pageB.fill('input[name="new-task"]', "Added by Bob");
    await pageB.click("text=Add task");
    await pageA.waitForSelector("text=Added by Bob", { timeout: 1500 });
    const createMs = Date.now() - created;
    await shot(pageA, "board-live");
    await pageA.click("text=Column view");
    await pageA.waitForSelector('.column[data-status="in-progress"] [data-task-id="1"]');
    check(pageA.url().includes("view=columns"), "the view is not in the URL");
    await shot(pageA, "board-columns");
    await pageA.selectOption('select[name="status"]', "in-progress");
    await pageA.waitForFunction(() => location.search.includes("status=in-progress"));
    await pageA.waitForFunction(() => !document.querySelector('[data-task-id="2"]'));
    const statusUrl = pageA.url();
    await pageA.selectOption('select[name="status"]', "");
    await pageA.fill('input[name="q"]', "bob");
    await pageA.waitForFunction(() => location.search.includes("q=bob"));
    await pageA.waitForFunction(() => document.querySelectorAll("[data-task-id]").length === 1
      && document.querySelector('[data-task-id="3"]'));
    // A shared filtered address opens with the same filters.
    const shared = await pageB.context().newPage();
    await visit(shared, pageA.url());
    await shared.waitForSelector('[data-task-id="3"]');
    const sharedRows = await shared.evaluate(() => document.querySelectorAll("[data-task-id]").length);
    return { statusMs, createMs, url: statusUrl, sharedRows,
             policyViolations: [...await violations(pageA), ...await violations(pageB)] };
  },

  // 10,000 tasks: a cold load, a bounded DOM, and a scroll to the end.
  async scale() {
    const context = await signedIn(args.users[0]);
    const page = await context.newPage();
    const client = await context.newCDPSession(page);
    await client.send("Network.enable");
    await client.send("Network.setCacheDisabled", { cacheDisabled: true });
    const started = Date.now();
    await visit(page, `${args.base}/projects/${args.project}`);
    await page.waitForSelector('[data-task-id="1"]', { timeout: 15000 });
    const interactiveMs = Date.now() - started;
    await page.waitForSelector('[data-load="ready"]', { timeout: 60000 });
    const allLoadedMs = Date.now() - started;
    const timings = await page.evaluate(() => ({
      fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null,
      boardReady: performance.getEntriesByName("board-ready")[0]?.startTime ?? null,
    }));
    const countText = await page.textContent('[data-load="ready"]');
    check(countText.includes("10000 tasks"), `expected 10000 tasks, the board says: ${countText}`);
    let maxRows = 0;
    const rows = () => page.evaluate(() => document.querySelectorAll(".task-row").length);
    maxRows = Math.max(maxRows, await rows());
    const scrollStarted = Date.now();
    for (let i = 1; i <= 20; i++) {
      await page.$eval(".task-list", (list, fraction) => { list.scrollTop = list.scrollHeight * fraction; }, i / 20);
      await page.waitForTimeout(30);
      maxRows = Math.max(maxRows, await rows());
    }
    await page.waitForSelector('[data-task-id="10000"]', { timeout: 5000 });
    const scrollMs = Date.now() - scrollStarted;
    await shot(page, "board-10000");
    const heap = await client.send("Runtime.getHeapUsage");

    // The column view: seven virtual lists, still a bounded DOM.
    await page.click("text=Column view");
    await page.waitForSelector('.column[data-status="done"] .task-card');
    const cards = () => page.evaluate(() => document.querySelectorAll(".task-card").length);
    let maxCards = await cards();
    for (let i = 1; i <= 10; i++) {
      await page.$$eval(".cards", (lists, fraction) => lists.forEach((list) => { list.scrollTop = list.scrollHeight * fraction; }), i / 10);
      await page.waitForTimeout(30);
      maxCards = Math.max(maxCards, await cards());
    }
    await shot(page, "columns-10000");

    // A warm load: the service worker serves the app and the board comes
    // from the copy on the device, then catches up over the live link.
    await client.send("Network.setCacheDisabled", { cacheDisabled: false });
    await serviceWorkerInControl(page);
    await savedSeq(page, args.users[0], 30000);
    const warmStarted = Date.now();
    await reload(page);
    await page.waitForSelector('[data-task-id="1"]', { timeout: 15000 });
    const warmInteractiveMs = Date.now() - warmStarted;
    await page.waitForSelector('[data-load="ready"]', { timeout: 30000 });
    const warmAllLoadedMs = Date.now() - warmStarted;
    await page.waitForSelector('[data-link="live"]', { timeout: 15000 });
    const warmLiveMs = Date.now() - warmStarted;
    const warmCount = await page.textContent('[data-load="ready"]');
    check(warmCount.includes("10000 tasks"), `expected 10000 tasks after a warm load: ${warmCount}`);
    return { interactiveMs, allLoadedMs, ...timings, maxRows, maxCards, scrollMs, jsHeapBytes: heap.usedSize,
             warmInteractiveMs, warmAllLoadedMs, warmLiveMs };
  },

  // Edits the server refuses roll back, say why, and keep what was typed.
  async rollback() {
    const [alice] = args.users;
    const context = await signedIn(alice);
    const page = await context.newPage();
    // A dependency cycle: task 2 may not depend on task 1, which depends on it.
    await visit(page, `${args.base}/projects/${args.project}/tasks/2`);
    await page.waitForSelector("h1:has-text('Task #2')");
    // Opened at a task's address, the page fetched the task page's module
    // from the start (a preload link), not once the app asked for it.
    const taskModuleLoads = await page.evaluate(() => performance.getEntriesByType("resource")
      .filter((entry) => /split_.*task_route.*\.wasm$/.test(entry.name))
      .map((entry) => entry.initiatorType));
    await page.fill('input[name="dependency-search"]', "1");
    await page.click('[data-dependency="1"]');
    await page.click('button[type="submit"]');
    const cycle = await page.waitForSelector(".notice-text:has-text('Not saved')", { timeout: 5000 });
    const cycleMessage = await cycle.textContent();
    await shot(page, "rollback-cycle");

    // A stale edit: someone else changes task 1 while Alice edits it.
    await visit(page, `${args.base}/projects/${args.project}/tasks/1`);
    await page.waitForSelector("h1:has-text('Task #1')");
    await page.fill('input[name="title"]', "Alice's new title");
    await step("change_task_1");
    await page.click('button[type="submit"]');
    const stale = await page.waitForSelector(".notice-text:has-text('Not saved')", { timeout: 5000 });
    const staleMessage = await stale.textContent();
    const typed = await page.inputValue('input[name="title"]');
    await page.click("text=← Board");
    await page.waitForSelector('[data-task-id="1"]');
    const shown = await page.textContent('[data-task-id="1"] .task-title');
    await shot(page, "rollback-stale");

    // An address of a task that does not exist says so instead of waiting.
    await visit(page, `${args.base}/projects/${args.project}/tasks/999`);
    const missing = await (await page.waitForSelector("text=There is no such task", { timeout: 10000 })).textContent();

    // A project the server refuses shows why, with a retry, not a blank page.
    await visit(page, `${args.base}/projects/01900000-0000-7000-8000-000000000000`);
    const refused = await page.waitForSelector(".failure", { timeout: 10000 });
    const refusedText = await refused.textContent();
    const retry = await page.$(".failure button:has-text('Retry')");
    await page.waitForSelector('[data-link="refused"]');
    await shot(page, "refused-project");
    return { cycleMessage, staleMessage, typed, shown, missing,
             refusedText, hasRetry: retry !== null, taskModuleLoads };
  },

  // The server restarts: the board says it is offline, then catches up.
  async reconnect() {
    const page = await openBoard(await signedIn(args.users[0]));
    await step("stop_server");
    await page.waitForSelector('[data-link="offline"]', { timeout: 10000 });
    await shot(page, "offline");
    await step("start_server_and_change");
    await page.waitForSelector('[data-link="live"]', { timeout: 15000 });
    await page.waitForSelector("text=Made while you were away", { timeout: 5000 });
    const status = await rowStatus(page, 1);
    return { status };
  },

  // Offline-first: the board opened once shows again after a reload with
  // the server gone (service worker + the copy on the device); edits made
  // then are kept, survive another reload, and are sent on reconnect, where
  // the one someone else changed meanwhile rolls back and says why. The
  // app catches up by seq: no task is read again by REST.
  async offline() {
    const [alice] = args.users;
    const context = await signedIn(alice);
    const page = await openBoard(context);
    await serviceWorkerInControl(page);
    const seqKept = await savedSeq(page, alice);
    await step("stop_server");

    const reloaded = await reload(page);
    const pageFromWorker = reloaded.fromServiceWorker();
    await page.waitForSelector('[data-task-id="3"]', { timeout: 10000 });
    await page.waitForSelector('[data-link="offline"]', { timeout: 15000 });
    const titleOffline = await page.textContent(".project-head h1");
    const rowsOffline = await page.evaluate(() => document.querySelectorAll(".task-row").length);
    await shot(page, "offline-board");

    await page.selectOption('[data-task-id="1"] select.status', "done");
    await page.waitForSelector(".notice-text:has-text('Offline: the change is kept')", { timeout: 5000 });
    await page.selectOption('[data-task-id="2"] select.status', "review");
    await page.waitForSelector('[data-queued="2"]', { timeout: 5000 });
    await shot(page, "offline-queued");

    // The queued edits outlive a reload.
    await reload(page);
    await page.waitForSelector('[data-queued="2"]', { timeout: 10000 });
    const queuedAfterReload = {
      1: await rowStatus(page, 1),
      2: await rowStatus(page, 2),
    };

    const restRequests = [];
    page.on("request", (request) => {
      if (/\/tasks(\?|$)/.test(new URL(request.url()).pathname + new URL(request.url()).search)) {
        restRequests.push(request.url());
      }
    });
    await step("start_server_and_change");
    await page.waitForSelector('[data-link="live"]', { timeout: 20000 });
    await page.waitForSelector("text=Made while you were away", { timeout: 10000 });
    await page.waitForSelector('[data-queued]', { state: "detached", timeout: 10000 });
    const conflict = await (await page.waitForSelector(
      ".notice-text:has-text('someone else changed this task first')", { timeout: 10000 })).textContent();
    await page.waitForFunction(() => {
      const select = document.querySelector('[data-task-id="2"] select.status');
      return select && select.value === "pending";
    }, null, { timeout: 5000 });
    await shot(page, "offline-caught-up");
    return {
      seqKept, pageFromWorker, titleOffline, rowsOffline, queuedAfterReload, conflict,
      status1: await rowStatus(page, 1),
      status2: await rowStatus(page, 2),
      title2: await page.textContent('[data-task-id="2"] .task-title'),
      restRequests,
      policyViolations: await violations(page),
    };
  },

  // A deploy while the board is open: the open page keeps working, hears
  // of the new build and offers a reload, which brings the new build; the
  // old build's cache is gone.
  async deploy() {
    const context = await signedIn(args.users[0]);
    const page = await openBoard(context);
    await serviceWorkerInControl(page);
    const before = await page.evaluate(() => caches.keys());
    await step("deploy");
    await page.evaluate(() => navigator.serviceWorker.getRegistration().then((registration) => registration.update()));
    await page.waitForSelector(".new-version", { timeout: 15000 });
    const notice = await page.textContent(".new-version");
    await shot(page, "new-version");
    // The old page still works: its lazily loaded task page opens.
    await page.click('[data-task-id="1"] .task-title');
    await page.waitForSelector("h1:has-text('Task #1')", { timeout: 10000 });
    await page.click(".new-version button");
    await page.waitForSelector('[data-link="live"]', { timeout: 15000 });
    await page.waitForSelector("h1:has-text('Task #1')", { timeout: 10000 });
    await page.waitForTimeout(500);
    return {
      before,
      after: await page.evaluate(() => caches.keys()),
      noticeAfterReload: await page.$(".new-version") !== null,
      notice,
      build: await page.evaluate(() => [...document.scripts].map((script) => script.textContent)
        .join("").match(/var build = "([^"]+)"/)[1]),
      policyViolations: await violations(page),
    };
  },

  // The server's first paint: the board, a task and the sign-in form as a
  // first visit shows them before the app has run (its wasm held back), and
  // the app's hand-over, on a phone and a desktop: nothing moves.
  async firstPaint() {
    // Where each element is: the first paint's copy (inside the frame) or
    // the app's (outside it), per selector, in document order.
    const layout = (page, selectors, inFrame) => page.evaluate(({ selectors, inFrame }) =>
      Object.fromEntries(selectors.map((selector) => [selector,
        [...document.querySelectorAll(selector)]
          .filter((element) => !!element.closest("#shell") === inFrame)
          .slice(0, 12)
          .map((element) => {
            const box = element.getBoundingClientRect();
            return { x: box.x, y: box.y, width: box.width, height: box.height,
                     text: (element.value ?? element.textContent).trim().slice(0, 60) };
          })])), { selectors, inFrame });
    // What differs by more than a pixel (or in text) between the two.
    const moved = (before, after) => Object.keys(before).flatMap((selector) => {
      const differences = [];
      if (before[selector].length === 0) differences.push(`${selector}: not in the first paint`);
      before[selector].forEach((box, index) => {
        const other = after[selector][index];
        const far = (key) => Math.abs(box[key] - other[key]) > 1;
        if (!other || box.text !== other.text || ["x", "y", "width", "height"].some(far)) {
          differences.push(`${selector}[${index}]: ${JSON.stringify(box)} -> ${JSON.stringify(other)}`);
        }
      });
      return differences;
    });
    const screens = {
      board: { path: `/projects/${args.project}`,
               selectors: [".project-head h1", ".project-head nav", ".toolbar", ".virtual-list", ".task-row .task-title"] },
      task: { path: `/projects/${args.project}/tasks/1`,
              selectors: [".task-detail h1", 'input[name="title"]', "section.markdown", "fieldset.dependencies legend"] },
      signIn: { path: "/signin", selectors: [".auth h1", 'input[name="email"]', '.auth button[type="submit"]'] },
    };
    const devices = {
      phone: { viewport: { width: 412, height: 823 }, isMobile: true, hasTouch: true },
      desktop: { viewport: { width: 1280, height: 900 } },
    };
    const result = {};
    for (const [device, options] of Object.entries(devices)) {
      const context = await signedIn(args.users[0], options);
      await context.addInitScript(() => {
        window.__shifts = 0;
        new PerformanceObserver((list) => list.getEntries().forEach((entry) => {
          if (!entry.hadRecentInput) window.__shifts += entry.value;
        })).observe({ type: "layout-shift", buffered: true });
      });
      // The app held back (its wasm refused; no service worker to fetch it
      // past the refusal): what the server drew is all there is.
      const stillContext = await signedIn(args.users[0], { ...options, serviceWorkers: "block" });
      const still = await stillContext.newPage();
      await still.route("**/*.wasm", (route) => route.abort());
      const drawn = {};
      for (const [name, screen] of Object.entries(screens)) {
        await still.goto(args.base + screen.path);
        await still.waitForLoadState("load");
        drawn[name] = await layout(still, screen.selectors, true);
        await shot(still, `${name}-${device}-first-paint`);
        if (device === "phone") {
          result[name] = await still.evaluate(() => {
            const frame = document.querySelector("#shell.first-paint");
            return frame && {
              inert: frame.inert,
              name: frame.querySelector(".project-head h1")?.textContent ?? null,
              titles: [...frame.querySelectorAll(".task-row .task-title")].map((a) => a.textContent),
              strong: [...frame.querySelectorAll("section.markdown strong")].map((s) => s.textContent),
              markdownText: [...frame.querySelectorAll("section.markdown")].map((s) => s.textContent).join("\n"),
              title: frame.querySelector('input[name="title"]')?.value ?? null,
              who: frame.querySelector(".who")?.textContent ?? null,
              images: frame.querySelectorAll("img").length,
              scripts: frame.querySelectorAll("script").length,
              pwned: window.__pwned ?? null,
            };
          });
        }
      }
      // A row's link in the picture does nothing: the frame is inert.
      await still.goto(args.base + screens.board.path);
      const link = await still.$("#shell .task-row .task-title");
      const box = await link.boundingBox();
      await still.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
      await still.waitForTimeout(300);
      result.inertClickStayed = (result.inertClickStayed ?? true) && new URL(still.url()).pathname === screens.board.path;
      await stillContext.close();

      // With the app: after its hand-over, everything is where it was.
      const page = await context.newPage();
      for (const [name, screen] of Object.entries(screens)) {
        const started = Date.now();
        await visit(page, args.base + screen.path);
        result[`${name}HandOverMs`] = Math.max(result[`${name}HandOverMs`] ?? 0, Date.now() - started);
        const after = await layout(page, screen.selectors, false);
        result[`${name}Moved`] = [...(result[`${name}Moved`] ?? []), ...moved(drawn[name], after).map((m) => `${device} ${m}`)];
        result[`${name}Shift`] = Math.max(result[`${name}Shift`] ?? 0, await page.evaluate(() => window.__shifts));
        await shot(page, `${name}-${device}-app`);
      }
      result.policyViolations = [...(result.policyViolations ?? []), ...(await violations(page))];
      await context.close();
    }
    return result;
  },

  // The handshake refused because the server cannot check the token (its
  // sessions are unreadable): the board says so, keeps the session and
  // retries until the server can admit it again.
  async unavailable() {
    const page = await openBoard(await signedIn(args.users[0]));
    await step("restart_unable_to_read_sessions");
    await page.waitForSelector('[data-link="unavailable"]', { timeout: 15000 });
    await shot(page, "unavailable");
    const signedInStill = () => page.evaluate(() => localStorage.getItem("taskmaster.user") !== null
      && /tm_csrf=/.test(document.cookie));
    const kept = await signedInStill();
    check(kept, "a server-side refusal signed the user out");
    await step("sessions_readable_again");
    await page.waitForSelector('[data-link="live"]', { timeout: 20000 });
    const after = await signedInStill();
    return { token_kept: kept && after, url: page.url(), policyViolations: await violations(page) };
  },
};

try {
  check(scenarios[scenario], `unknown scenario ${scenario}`);
  const result = await scenarios[scenario]();
  say({ result });
  await browser.close();
  process.exit(0);
} catch (error) {
  process.stderr.write(`scenario ${scenario} failed: ${error.stack || error}\n`);
  await browser.close().catch(() => {});
  process.exit(1);
}
