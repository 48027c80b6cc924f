// Lighthouse on the web app's pages, with the desktop and the mobile preset,
// each run in a browser of its own (nothing cached, no service worker, no
// copy on the device: a first visit). Signed-in pages get the session the
// way the app does (the server's cookies, the user's name in localStorage),
// set up on a same-origin address that is not the app, so the audited load
// is the page's first.
//
//   node e2e/lighthouse.mjs '<json: base, user, pages: [{name, path, signedIn}], artifacts, mobileRuns>'
//
// Each page is audited with the mobile preset `mobileRuns` times (default
// 5), each a first visit in a fresh browser, and judged by each score's
// and metric's median over the runs (Lighthouse CI's `median`
// aggregation), as Lighthouse advises for lab numbers, which vary from run
// to run: its simulated slow phone magnifies every millisecond of the
// machine's noise four times. The desktop preset, far inside its budgets,
// runs once. The report kept is the median run's (Lighthouse's choice: the
// run nearest the median FCP and TTI).
//
// Prints one JSON line: per page and preset, the medians of the category
// scores and of the metrics the budgets name, and every run's.
import lighthouse from "lighthouse";
import { computeMedianRun } from "lighthouse/core/lib/median-run.js";
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

const runsOf = { desktop: 1, mobile: args.mobileRuns ?? 5 };
const metric = (lhr, id) => lhr.audits[id]?.numericValue ?? null;
const summary = (lhr) => ({
  performance: lhr.categories.performance.score,
  accessibility: lhr.categories.accessibility.score,
  bestPractices: lhr.categories["best-practices"].score,
  fcp: metric(lhr, "first-contentful-paint"),
  lcp: metric(lhr, "largest-contentful-paint"),
  cls: metric(lhr, "cumulative-layout-shift"),
  tbt: metric(lhr, "total-blocking-time"),
  speedIndex: metric(lhr, "speed-index"),
});

/** Each field's median over the runs' summaries. */
function medians(summaries) {
  const middle = (values) => {
    const sorted = values.filter((value) => value !== null).sort((a, b) => a - b);
    if (!sorted.length) return null;
    const half = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[half] : (sorted[half - 1] + sorted[half]) / 2;
  };
  return Object.fromEntries(Object.keys(summaries[0]).map((key) => [key, middle(summaries.map((one) => one[key]))]));
}

/** One audit of `target` with `config`, in a browser of its own. */
async function audit(target, config) {
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
    return { lhr: run.lhr, report: run.report };
  } finally {
    await browser.close();
  }
}

const results = [];
for (const target of args.pages) {
  for (const [preset, config] of Object.entries(presets)) {
    const audits = [];
    for (let index = 0; index < runsOf[preset]; index++) audits.push(await audit(target, config));
    const median = computeMedianRun(audits.map((one) => one.lhr));
    const chosen = audits.find((one) => one.lhr === median);
    const [json, html] = chosen.report;
    writeFileSync(`${args.artifacts}/${target.name}-${preset}.json`, json);
    writeFileSync(`${args.artifacts}/${target.name}-${preset}.html`, html);
    const failing = Object.values(median.audits)
      .filter((one) => one.score !== null && one.score < 0.9 && one.scoreDisplayMode !== "informative"
        && one.scoreDisplayMode !== "notApplicable" && one.scoreDisplayMode !== "manual")
      .map((one) => `${one.id} (${one.displayValue || one.score})`);
    results.push({
      page: target.name,
      preset,
      finalUrl: median.finalDisplayedUrl,
      runtimeError: audits.map((one) => one.lhr.runtimeError?.message).find(Boolean) ?? null,
      ...medians(audits.map((one) => summary(one.lhr))),
      runs: audits.map((one) => summary(one.lhr)),
      failing,
    });
  }
}
process.stdout.write(JSON.stringify({ results }) + "\n");
