// The wasm files a lazy module needs, read from the loader wasm-split wrote
// (__wasm_split.js): the module's own file and every chunk it depends on,
// directly or through another chunk. index.html preloads exactly these when
// the page opened is that module's, instead of every chunk of the build.
//
//   node scripts/wasm-split-deps.mjs <__wasm_split.js> <module name part> <url prefix>
//
// Prints the files as a comma-separated list of quoted URLs.
import { readFileSync } from "node:fs";

const [loader, wanted, prefix] = process.argv.slice(2);
const source = readFileSync(loader, "utf8");
// `const __chunk_N = makeLoad(() => { … fetch(new URL("./file", …)) … }, [deps]);`
// and `export const __wasm_split_load_<name> = wrapAsyncCb(makeLoad(… , [deps]));`
const definition = /(?:export )?const (__\w+) = (?:wrapAsyncCb\()?makeLoad\(\(\) => \{\s*const src = fetch\(new URL\("\.\/([^"]+)"[\s\S]*?\n\}\s*,\s*\[([^\]]*)\]/g;
const loads = new Map();
for (const [, name, file, deps] of source.matchAll(definition)) {
  loads.set(name, { file, deps: deps.split(",").map((dep) => dep.trim()).filter(Boolean) });
}
const roots = [...loads.keys()].filter((name) => name.startsWith("__wasm_split_load_") && name.includes(wanted));
if (roots.length !== 1) {
  throw new Error(`expected one lazy module named like ${wanted}, found ${roots.length}`);
}
const files = new Set();
const visit = (name) => {
  const load = loads.get(name);
  if (!load) throw new Error(`${name} is not defined in ${loader}`);
  if (files.has(load.file)) return;
  files.add(load.file);
  load.deps.forEach(visit);
};
visit(roots[0]);
process.stdout.write([...files].map((file) => `"${prefix}${file}"`).join(","));
