// REST API load test: reads, conditional reads and writes on one shared project.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e VUS=50 -e DURATION=30s loadtest/k6/rest.js
//
// Thresholds are our targets: p95 under 50 ms for conditional (ETag, 304)
// reads, under 200 ms for uncached reads and for writes, under 1% errors.
import http from 'k6/http';
import { check, fail } from 'k6';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const TASKS = parseInt(__ENV.TASKS || '1000', 10);

export const options = {
  scenarios: {
    api: {
      executor: 'constant-vus',
      vus: parseInt(__ENV.VUS || '50', 10),
      duration: __ENV.DURATION || '30s',
    },
  },
  thresholds: {
    'http_req_failed': ['rate<0.01'],
    'http_req_duration{kind:conditional}': ['p(95)<50'],
    'http_req_duration{kind:read}': ['p(95)<200'],
    'http_req_duration{kind:write}': ['p(95)<200'],
  },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};

function json(body) {
  return { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
}

export function setup() {
  const email = `k6-${Date.now()}@example.com`;
  const registered = http.post(`${BASE_URL}/api/v1/auth/register`,
    JSON.stringify({ email, name: 'k6', password: 'load test password' }),
    { headers: { 'Content-Type': 'application/json' } });
  if (registered.status !== 201) fail(`register: ${registered.status} ${registered.body}`);
  const token = registered.json('token');
  const auth = { headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } };
  const project = http.post(`${BASE_URL}/api/v1/projects`, JSON.stringify({ name: 'k6 load' }), auth);
  if (project.status !== 201) fail(`project: ${project.status} ${project.body}`);
  const projectId = project.json('id');
  const batch = [];
  for (let i = 1; i <= TASKS; i++) {
    const body = { title: `task ${i}`, priority: ['critical', 'high', 'medium', 'low'][i % 4] };
    // Only ids of earlier batches exist for sure (a batch is sent in parallel).
    if (i > 21 && i % 3 === 0) body.dependencies = [i - 20, i - 21];
    batch.push(['POST', `${BASE_URL}/api/v1/projects/${projectId}/tasks`, JSON.stringify(body), auth]);
    if (batch.length === 20 || i === TASKS) {
      for (const response of http.batch(batch.splice(0))) {
        if (response.status !== 201) fail(`seed: ${response.status} ${response.body}`);
      }
    }
  }
  return { token, projectId };
}

export default function (data) {
  const headers = { Authorization: `Bearer ${data.token}`, 'Content-Type': 'application/json' };
  const base = `${BASE_URL}/api/v1/projects/${data.projectId}`;
  const id = 1 + Math.floor(Math.random() * TASKS);

  const page = http.get(`${base}/tasks?limit=100`, { headers, tags: { kind: 'read', name: 'list' } });
  check(page, { 'list 200': (r) => r.status === 200 });

  const task = http.get(`${base}/tasks/${id}`, { headers, tags: { kind: 'read', name: 'get' } });
  check(task, { 'get 200': (r) => r.status === 200 });
  const etag = task.headers['Etag'];

  const again = http.get(`${base}/tasks/${id}`, {
    headers: Object.assign({ 'If-None-Match': etag }, headers),
    tags: { kind: 'conditional', name: 'get if-none-match' },
    responseCallback: http.expectedStatuses(200, 304),
  });
  check(again, { 'conditional 304 or 200': (r) => r.status === 304 || r.status === 200 });

  const next = http.get(`${base}/tasks/next`, { headers, tags: { kind: 'read', name: 'next' } });
  check(next, { 'next 200': (r) => r.status === 200 || r.status === 204 });

  const statuses = ['pending', 'in-progress', 'review', 'done'];
  const patched = http.patch(`${base}/tasks/${id}`,
    JSON.stringify({ status: statuses[Math.floor(Math.random() * statuses.length)] }),
    { headers, tags: { kind: 'write', name: 'patch' } });
  check(patched, { 'patch 200': (r) => r.status === 200 });
}
