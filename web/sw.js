// Task Master's service worker: the app starts without the network.
//
// - The build's assets (content-hashed, never changing) are cached when the
//   worker installs and served from the cache first.
// - Pages (`index.html`, whatever the address) come from the network first,
//   so a deploy reaches users on their next load; the cached copy answers
//   only when the network does not (offline, or no answer in time).
// - The API and the live link are never touched: the app keeps its own
//   offline copy of the projects it opened (IndexedDB) and catches up by seq.
//
// scripts/build-web.sh fills in the build's name and asset list. A new build
// is a new script, so the browser installs it next to the old one; it takes
// over at once, deletes the older builds' caches, and tells every open page
// its build, so a page of an older build offers a reload instead of breaking.
"use strict";

const BUILD = "{{BUILD}}";
const ASSETS = [{{ASSETS}}];
const CACHE_PREFIX = "taskmaster-";
const CACHE = CACHE_PREFIX + BUILD;
const PAGE = "/";
// Past this, a page request answers from the cache: a network that accepts
// connections but does not answer is as good as none.
const PAGE_TIMEOUT_MS = 4000;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll([PAGE, ...ASSETS]))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(CACHE_PREFIX) && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
    for (const client of await self.clients.matchAll({ type: "window" })) {
      client.postMessage({ type: "build", build: BUILD });
    }
  })());
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "build?" && event.source) {
    event.source.postMessage({ type: "build", build: BUILD });
  }
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(page(request));
  } else if (url.pathname.startsWith("/assets/")) {
    event.respondWith(asset(request));
  }
});

async function page(request) {
  const cache = await caches.open(CACHE);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), PAGE_TIMEOUT_MS);
  try {
    const response = await fetch(request, { signal: controller.signal });
    // A page with the server's first paint in it is this visit's own; the
    // plain page is the one to start from offline.
    if (response.ok && (response.headers.get("content-type") || "").startsWith("text/html")
        && !response.headers.has("x-first-paint")) {
      await cache.put(PAGE, response.clone());
    }
    return response;
  } catch (offline) {
    const cached = await cache.match(PAGE);
    if (cached) return cached;
    throw offline;
  } finally {
    clearTimeout(timer);
  }
}

async function asset(request) {
  const cached = await caches.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) {
    const cache = await caches.open(CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}
