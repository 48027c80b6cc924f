// Open-loop load in steps, for finding the breaking point and what happens
// beyond it. Requests arrive at a fixed rate whatever the latency (k6's
// constant-arrival-rate), as users' requests do, so an overloaded server
// cannot slow the load down by being slow: either it sheds (503 with
// Retry-After) or queues grow.
//
//   SSL_CERT_FILE=target/cluster/edge/tls/cert.pem \
//   k6 run -e BASE_URL=https://localhost:8443 -e STEPS=100,200,400,800 -e STEP=20s loadtest/k6/stress.js
//
// Each step is a scenario named `step_<n>_<rate>` (its tag in the summary):
// 70 % reads (a task, a list page, next-task), 30 % edits, spread over the
// projects. A request that gets 429 or 503 follows Retry-After once, as the
// web app does, before counting as refused.
import http from 'k6/http';
import { check, fail, sleep } from 'k6';
import { Counter } from 'k6/metrics';

const BASE_URL = __ENV.BASE_URL || 'https://localhost:8443';
const STEPS = (__ENV.STEPS || '100,200,400,800').split(',').map((rate) => parseInt(rate, 10));
const STEP = __ENV.STEP || '20s';
const PROJECTS = parseInt(__ENV.PROJECTS || '20', 10);
const TASKS = parseInt(__ENV.TASKS || '50', 10);
const stepSeconds = parseInt(STEP, 10);

const refused = new Counter('refused');
const shed = new Counter('shed_503');
const errors = new Counter('errors');

const scenarios = {};
const thresholds = {};
STEPS.forEach((rate, n) => {
  const name = `step_${n}_${rate}`;
  scenarios[name] = {
    executor: 'constant-arrival-rate', rate, timeUnit: '1s', duration: STEP,
    preAllocatedVUs: Math.min(rate, 200), maxVUs: Math.max(rate * 2, 100),
    startTime: `${n * stepSeconds}s`, gracefulStop: '5s',
  };
  // Listed so that the summary export carries every step's figures.
  thresholds[`http_req_duration{scenario:${name}}`] = ['max>=0'];
  thresholds[`refused{scenario:${name}}`] = ['count>=0'];
  thresholds[`shed_503{scenario:${name}}`] = ['count>=0'];
  thresholds[`errors{scenario:${name}}`] = ['count>=0'];
  thresholds[`iterations{scenario:${name}}`] = ['count>=0'];
});

export const options = {
  scenarios,
  thresholds,
  setupTimeout: '300s',
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
  discardResponseBodies: true,
};

function json(method, path, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  return http.request(method, `${BASE_URL}${path}`, JSON.stringify(body),
    { headers, responseType: 'text' });
}

export function setup() {
  const owner = json('POST', '/api/v1/auth/register',
    { email: `stress-${Date.now()}@load.test`, name: 'owner', password: 'load test password' });
  if (owner.status !== 201) fail(`register: ${owner.status} ${owner.body}`);
  const token = owner.json('token');
  const projects = [];
  for (let p = 0; p < PROJECTS; p++) {
    const project = json('POST', '/api/v1/projects', { name: `stress ${p}` }, token);
    if (project.status !== 201) fail(`project: ${project.status}`);
    const id = project.json('id');
    for (let t = 0; t < TASKS; t++) json('POST', `/api/v1/projects/${id}/tasks`, { title: `task ${t}` }, token);
    projects.push(id);
  }
  console.log('setup done');
  return { token, projects };
}

function once(data) {
  const project = data.projects[Math.floor(Math.random() * data.projects.length)];
  const task = 1 + Math.floor(Math.random() * TASKS);
  const params = {
    headers: { Authorization: `Bearer ${data.token}`, 'Content-Type': 'application/json',
      // Many users, not one: each request its own route cookie.
      Cookie: `tm_route=s${Math.floor(Math.random() * 1e6)}` },
  };
  const roll = Math.random();
  if (roll < 0.3) {
    return http.patch(`${BASE_URL}/api/v1/projects/${project}/tasks/${task}`,
      JSON.stringify({ title: `stress ${Date.now()}` }), params);
  }
  const path = roll < 0.55 ? `tasks/${task}` : roll < 0.8 ? 'tasks?limit=50' : 'tasks/next';
  return http.get(`${BASE_URL}/api/v1/projects/${project}/${path}`, params);
}

export default function (data) {
  let response = once(data);
  if (response.status === 429 || response.status === 503) {
    if (response.status === 503) shed.add(1);
    const wait = parseFloat(response.headers['Retry-After'] || '1');
    sleep(Math.min(wait, 5) * (0.5 + Math.random()));
    response = once(data);
    if (response.status === 429 || response.status === 503) {
      refused.add(1);
      return;
    }
  }
  if (!check(response, { ok: (r) => r.status >= 200 && r.status < 300 })) errors.add(1);
}
