// Lighthouse on the web app's pages, with the desktop and the mobile preset,
// each run in a browser of its own (nothing cached, no service worker, no
// copy on the device: a first visit). Signed-in pages get the session the
// way the app does (the server's cookies, the user's name in localStorage),
// set up on a same-origin address that is not the app, so the audited load
// is the page's first.
//
//   node e2e/lighthouse.mjs '<json: base, user, pages: [{name, path, signedIn}], artifacts>'
//
// Prints one JSON line: per page and preset, the category scores and the
// metrics the budgets name. The full reports land in `artifacts`.
import lighthouse from "lighthouse";
import desktopConfig from "lighthouse/core/config/desktop-config.js";
import puppeteer from "puppeteer-core";
import { mkdirSync, writeFileSync } from "node:fs";

const args = JSON.parse(process.argv[2]);
mkdirSync(args.artifacts, { recursive: true });
const presets = { desktop: desktopConfig, mobile: undefined };

async function signIn(page, user) {
  await page.goto(`${args.base}/healthz`);
  await page.evaluate(async (user) => {
    const answer = await fetch("/api/v1/auth/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: user.email, password: user.password }),
    });
    if (!answer.ok) throw new Error(`signing in failed: ${answer.status}`);
    localStorage.setItem("taskmaster.user", JSON.stringify({ id: user.id, email: user.email, name: user.name }));
  }, user);
}

const results = [];
for (const target of args.pages) {
  for (const [preset, config] of Object.entries(presets)) {
    const browser = await puppeteer.launch({
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
    });
    try {
      const page = await browser.newPage();
      if (target.signedIn) await signIn(page, args.user);
      const run = await lighthouse(`${args.base}${target.path}`, {
        output: ["json", "html"],
        logLevel: "error",
        onlyCategories: ["performance", "accessibility", "best-practices"],
      }, config, page);
      const [json, html] = run.report;
      writeFileSync(`${args.artifacts}/${target.name}-${preset}.json`, json);
      writeFileSync(`${args.artifacts}/${target.name}-${preset}.html`, html);
      const lhr = run.lhr;
      const metric = (id) => lhr.audits[id]?.numericValue ?? null;
      const failing = Object.values(lhr.audits)
        .filter((audit) => audit.score !== null && audit.score < 0.9 && audit.scoreDisplayMode !== "informative"
          && audit.scoreDisplayMode !== "notApplicable" && audit.scoreDisplayMode !== "manual")
        .map((audit) => `${audit.id} (${audit.displayValue || audit.score})`);
      results.push({
        page: target.name,
        preset,
        finalUrl: lhr.finalDisplayedUrl,
        runtimeError: lhr.runtimeError?.message ?? null,
        performance: lhr.categories.performance.score,
        accessibility: lhr.categories.accessibility.score,
        bestPractices: lhr.categories["best-practices"].score,
        fcp: metric("first-contentful-paint"),
        lcp: metric("largest-contentful-paint"),
        cls: metric("cumulative-layout-shift"),
        tbt: metric("total-blocking-time"),
        speedIndex: metric("speed-index"),
        failing,
      });
    } finally {
      await browser.close();
    }
  }
}
process.stdout.write(JSON.stringify({ results }) + "\n");
