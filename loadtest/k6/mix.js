// Cache and replica benchmark: a mix of reads and writes from many users
// across several projects.
//
//   k6 run -e BASE_URLS=http://127.0.0.1:18080,http://127.0.0.1:18081 \
//          -e MIX=read -e VUS=1000 -e DURATION=30s -e SLEEP=0.25 loadtest/k6/mix.js
//
// MIX: read  — 90 % reads (GET task, a list page of 100, next-task, a third
//              each), 10 % PATCH;
//      write — 50 % reads, 50 % PATCH;
//      mixed — 70 % reads, 30 % PATCH;
//      get   — GET task only; list — list pages only (capacity runs).
// Each virtual user is one of USERS signed-in users (every one an editor of
// every project) and works on one of PROJECTS projects of TASKS tasks,
// talking to one of BASE_URLS (round robin by VU). SLEEP is each user's
// think time between requests, in seconds.
import http from 'k6/http';
import { check, fail, sleep } from 'k6';
import { Counter } from 'k6/metrics';

const BASE_URLS = (__ENV.BASE_URLS || __ENV.BASE_URL || 'http://127.0.0.1:8080').split(',');
const MIX = __ENV.MIX || 'read';
const USERS = parseInt(__ENV.USERS || '20', 10);
const PROJECTS = parseInt(__ENV.PROJECTS || '10', 10);
const TASKS = parseInt(__ENV.TASKS || '200', 10);
const SLEEP = parseFloat(__ENV.SLEEP || '0');
const WRITE_SHARE = { read: 0.1, write: 0.5, mixed: 0.3, get: 0, list: 0 }[MIX];
if (WRITE_SHARE === undefined) throw new Error(`unknown MIX ${MIX}`);

const failures = new Counter('failed_requests');

export const options = {
  scenarios: {
    users: {
      executor: 'constant-vus',
      vus: parseInt(__ENV.VUS || '1000', 10),
      duration: __ENV.DURATION || '30s',
    },
  },
  setupTimeout: '300s',
  thresholds: {
    'failed_requests': ['count<1'],
    'http_req_duration{kind:get}': ['p(95)<50'],
    'http_req_duration{kind:list}': ['p(95)<200'],
    'http_req_duration{kind:next}': ['p(95)<200'],
    'http_req_duration{kind:patch}': ['p(95)<200'],
  },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
  discardResponseBodies: true,
};

function post(base, path, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  return http.post(`${base}${path}`, JSON.stringify(body), { headers, responseType: 'text' });
}

export function setup() {
  const base = BASE_URLS[0];
  const run = Date.now();
  const users = [];
  for (let u = 0; u < USERS; u++) {
    const email = `mix-${run}-${u}@example.com`;
    const r = post(base, '/api/v1/auth/register', { email, name: `user ${u}`, password: 'load test password' });
    if (r.status !== 201) fail(`register: ${r.status} ${r.body}`);
    users.push({ email, token: r.json('token') });
  }
  const owner = users[0].token;
  const projects = [];
  for (let p = 0; p < PROJECTS; p++) {
    const r = post(base, '/api/v1/projects', { name: `mix ${p}` }, owner);
    if (r.status !== 201) fail(`project: ${r.status} ${r.body}`);
    const id = r.json('id');
    for (const user of users.slice(1)) {
      const m = post(base, `/api/v1/projects/${id}/members`, { email: user.email, role: 'editor' }, owner);
      if (m.status !== 201) fail(`member: ${m.status} ${m.body}`);
    }
    const batch = [];
    for (let t = 1; t <= TASKS; t++) {
      const body = { title: `task ${t}`, priority: ['critical', 'high', 'medium', 'low'][t % 4] };
      batch.push(['POST', `${base}/api/v1/projects/${id}/tasks`, JSON.stringify(body),
        { headers: { Authorization: `Bearer ${owner}`, 'Content-Type': 'application/json' } }]);
      if (batch.length === 20 || t === TASKS) {
        for (const c of http.batch(batch.splice(0))) {
          if (c.status !== 201) fail(`seed: ${c.status} ${c.body}`);
        }
      }
    }
    projects.push(id);
  }
  // cache-bench.sh starts measuring when it sees this line.
  console.log('setup done');
  return { tokens: users.map((user) => user.token), projects };
}

const STATUSES = ['pending', 'in-progress', 'review', 'done'];
const PRIORITIES = ['critical', 'high', 'medium', 'low'];

function expect(response, kind, ok) {
  const passed = check(response, { [`${kind} ok`]: (r) => ok.includes(r.status) });
  if (!passed) failures.add(1, { kind, status: String(response.status) });
}

export default function (data) {
  const vu = __VU - 1;
  const base = BASE_URLS[vu % BASE_URLS.length];
  const token = data.tokens[vu % data.tokens.length];
  const project = data.projects[vu % data.projects.length];
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  const tasks = `${base}/api/v1/projects/${project}/tasks`;
  const id = 1 + Math.floor(Math.random() * TASKS);

  if (Math.random() < WRITE_SHARE) {
    const change = Math.random() < 0.5
      ? { status: STATUSES[Math.floor(Math.random() * STATUSES.length)] }
      : { priority: PRIORITIES[Math.floor(Math.random() * PRIORITIES.length)] };
    const r = http.patch(`${tasks}/${id}`, JSON.stringify(change), { headers, tags: { kind: 'patch' } });
    expect(r, 'patch', [200]);
  } else {
    const pick = MIX === 'get' ? 0 : MIX === 'list' ? 1 : Math.floor(Math.random() * 3);
    if (pick === 0) {
      expect(http.get(`${tasks}/${id}`, { headers, tags: { kind: 'get' } }), 'get', [200]);
    } else if (pick === 1) {
      expect(http.get(`${tasks}?limit=100`, { headers, tags: { kind: 'list' } }), 'list', [200]);
    } else {
      expect(http.get(`${tasks}/next`, { headers, tags: { kind: 'next' } }), 'next', [200, 204]);
    }
  }
  if (SLEEP > 0) sleep(SLEEP * (0.5 + Math.random()));
}
